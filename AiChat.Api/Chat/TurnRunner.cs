using System.Diagnostics;
using System.Text;
using AiChat.Api.Agents;
using AiChat.Api.Billing;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>A stored turn waiting to run, with the user's text and the trace context of the request that started it.</summary>
public sealed record TurnWork(TurnRecord Turn, string Content, ActivityContext StartedBy = default);

/// <summary>
/// Runs one stored turn to its end: the agent's events are batched, stored and announced to followers as they come, a
/// heartbeat tells other instances the turn is alive (and brings cancel requests made there), and the end — completed,
/// failed or cancelled — is stored once with the last events, the assistant's message and the budget left. Then, when
/// the turn completed its conversation's first exchange, the conversation gets a generated title (after the end was
/// announced, so it never delays the answer). The turn's work is traced as a child of the request that started it,
/// so one trace shows the whole turn.
/// </summary>
public sealed partial class TurnRunner(
    TurnStore store,
    TurnHub hub,
    AgentService agents,
    TitleWriter titles,
    ConversationStore conversations,
    Ledger ledger,
    IOptions<ChatOptions> options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<TurnRunner> logger)
{
    public static readonly ActivitySource Source = new("AiChat.Chat");

    /// <param name="cancellation">Cancelled by a cancel request, or when the server stops (<paramref name="stopping"/>).</param>
    public async Task RunAsync(TurnWork work, CancellationTokenSource cancellation, CancellationToken stopping)
    {
        var answer = await RunTurnAsync(work, cancellation, stopping);
        if (answer is not null && work.Turn.NeedsTitle)
        {
            // Optional work: it gives way as soon as the server begins to stop, where a turn gets a grace period.
            await NameConversationAsync(work, answer, lifetime.ApplicationStopping);
        }
    }

    /// <summary>Runs the turn and stores its end; the answer's text when it completed, else null.</summary>
    private async Task<string?> RunTurnAsync(TurnWork work, CancellationTokenSource cancellation, CancellationToken stopping)
    {
        var turn = work.Turn;
        using var activity = Source.StartActivity("turn.run", ActivityKind.Internal, work.StartedBy);
        activity?.SetTag("aichat.turn_id", turn.Id);
        var beats = new PeriodicTimer(options.Value.HeartbeatInterval, time);
        var heartbeat = HeartbeatAsync(turn, cancellation, beats);
        var recorder = new Recorder(turn, store, hub, ledger, time);
        try
        {
            if (stopping.IsCancellationRequested)
            {
                await recorder.FailAsync([], new TurnFailure(StatusCodes.Status503ServiceUnavailable, ChatProblems.ShuttingDown, "The server was shutting down; send the message again."));
                return null;
            }

            var input = new TurnInput(turn.UserId, turn.Id, work.Content) { ConversationId = turn.ConversationId, UserMessageId = turn.UserMessageId };
            var events = agents.RunTurnAsync(input, cancellation.Token);
            IReadOnlyList<AgentEvent>? last = null;
            await foreach (var batch in DeltaCoalescer.BatchAsync(events, options.Value.DeltaCoalescing, cancellation.Token))
            {
                if (DeltaCoalescer.EndsTurn(batch[^1]))
                {
                    last = batch;
                    break; // leaving the loop ends the runtime's turn before the end is stored and announced
                }

                await recorder.AppendAsync(batch);
            }

            var said = last?.Take(last.Count - 1).ToList() ?? [];
            switch (last?[^1])
            {
                case AgentEvent.Completed:
                    await recorder.CompleteAsync(said);
                    return recorder.Text;
                case AgentEvent.Failed failed:
                    await recorder.FailAsync(said, TurnFailure.Of(failed));
                    return null;
                case AgentEvent.Cancelled when !stopping.IsCancellationRequested:
                    await recorder.CancelAsync(said);
                    return null;
            }

            cancellation.Token.ThrowIfCancellationRequested();
            await recorder.FailAsync(said, new TurnFailure(StatusCodes.Status502BadGateway, ChatProblems.AgentStreamEnded, "The agent stopped without finishing its answer."));
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            if (stopping.IsCancellationRequested)
            {
                await recorder.FailAsync([], new TurnFailure(StatusCodes.Status503ServiceUnavailable, ChatProblems.ShuttingDown, "The server shut down before the answer was finished."));
            }
            else
            {
                await recorder.CancelAsync([]);
            }
        }
        catch (AgentBusyException)
        {
            await recorder.FailAsync([], new TurnFailure(StatusCodes.Status409Conflict, AgentProblems.AgentBusy, "The agent was still busy with an earlier message."));
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            LogTurnCrashed(logger, ex, turn.Id);
            await recorder.FailAsync([], new TurnFailure(StatusCodes.Status500InternalServerError, Infrastructure.ProblemCodes.InternalError, "The turn failed unexpectedly. It has been logged."));
        }
        finally
        {
            beats.Dispose(); // ends the heartbeat's wait for the next beat (no exception)
            await heartbeat;
            hub.End(turn.Id);
        }

        return null;
    }

    /// <summary>
    /// Names the turn's conversation with one metered LLM call, unless it was named meanwhile (a user's title is never
    /// replaced, also when it is set while the call runs). A failure (budget, LLM error) leaves it unnamed and is logged.
    /// </summary>
    private async Task NameConversationAsync(TurnWork work, string answer, CancellationToken stopping)
    {
        var turn = work.Turn;
        using var activity = Source.StartActivity("conversation.title", ActivityKind.Internal, work.StartedBy);
        activity?.SetTag("aichat.turn_id", turn.Id);
        try
        {
            if (await conversations.FindAsync(turn.UserId, turn.ConversationId, stopping) is not { TitleSource: null } conversation)
            {
                return;
            }

            var title = await titles.SuggestAsync(turn.UserId, turn.Id, conversation.Model, work.Content, answer, stopping);
            if (title is null)
            {
                LogNoTitle(logger, turn.ConversationId, turn.Id);
                return;
            }

            await conversations.SetGeneratedTitleAsync(turn.ConversationId, title, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            LogTitleFailed(logger, ex, turn.ConversationId, turn.Id);
        }
    }

    /// <summary>Beats until <paramref name="beats"/> is disposed; a failed beat is logged and the next one tried.</summary>
    private async Task HeartbeatAsync(TurnRecord turn, CancellationTokenSource cancellation, PeriodicTimer beats)
    {
        while (await beats.WaitForNextTickAsync())
        {
            try
            {
                if (await store.HeartbeatAsync(turn.Id, time.GetUtcNow(), CancellationToken.None))
                {
                    await cancellation.CancelAsync(); // a cancel asked on another instance
                }
            }
            catch (Exception ex)
            {
                LogHeartbeatFailed(logger, ex, turn.Id);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Turn {TurnId} crashed")]
    private static partial void LogTurnCrashed(ILogger logger, Exception exception, Guid turnId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat of turn {TurnId} failed")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception, Guid turnId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Conversation {ConversationId} got no title after turn {TurnId}")]
    private static partial void LogTitleFailed(ILogger logger, Exception exception, Guid conversationId, Guid turnId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Conversation {ConversationId} got no title after turn {TurnId}: the model's answer had none")]
    private static partial void LogNoTitle(ILogger logger, Guid conversationId, Guid turnId);

    /// <summary>What a turn has said so far, and how it ends: every event is stored before followers are woken.</summary>
    private sealed class Recorder(TurnRecord turn, TurnStore store, TurnHub hub, Ledger ledger, TimeProvider time)
    {
        // The reply as streamed: the one place its text is gathered.
        private readonly StringBuilder _text = new();
        private int _seq = turn.LastEventSeq;
        private int _promptTokens;
        private int _completionTokens;
        private long? _costNanos;
        private bool _sawUsage;

        /// <summary>What the assistant has said so far.</summary>
        public string Text => _text.ToString();

        public async Task AppendAsync(IReadOnlyList<AgentEvent> batch)
        {
            var stored = Record(batch);
            if (stored.Count > 0)
            {
                // The turn's own token would be cancelled by a cancel request; what was said must still be stored.
                await store.AppendEventsAsync(turn.Id, stored, time.GetUtcNow(), CancellationToken.None);
                hub.Notify(turn.Id);
            }
        }

        public async Task CompleteAsync(IReadOnlyList<AgentEvent> said)
        {
            var stored = Record(said);
            var budget = await ledger.GetStateAsync(turn.UserId, CancellationToken.None); // once, at the turn's end
            var usage = _sawUsage
                ? new UsageDto(_promptTokens, _completionTokens, _promptTokens + _completionTokens, _costNanos is { } cost ? PriceTable.ToUsd(cost) : null)
                : null;
            var text = _text.ToString();
            var message = new MessageDto(turn.AssistantMessageId, "assistant", text, MessageStatus.Complete, usage, turn.CreatedAt.AddTicks(10));
            stored.Add(TurnEvents.Create(++_seq, TurnEvents.Completed,
                new TurnCompletedData(message, usage, budget is null ? null : new BudgetSummary(PriceTable.ToUsd(budget.Remaining)))));
            await FinishAsync(TurnStatus.Completed, null, MessageStatus.Complete, stored, budget?.Remaining);
        }

        public Task CancelAsync(IReadOnlyList<AgentEvent> said) =>
            EndAsync(said, TurnStatus.Cancelled, MessageStatus.Cancelled, new TurnFailure(StatusCodes.Status409Conflict, ChatProblems.Cancelled, "The turn was cancelled."));

        public Task FailAsync(IReadOnlyList<AgentEvent> said, TurnFailure failure) =>
            EndAsync(said, TurnStatus.Failed, MessageStatus.Failed, failure);

        private async Task EndAsync(IReadOnlyList<AgentEvent> said, string status, string messageStatus, TurnFailure failure)
        {
            var stored = Record(said);
            stored.Add(TurnEvents.Problem(++_seq, turn.Id, failure));
            // Cut off mid-answer, the runtime reported no usage for its last call, but the metering settled what it
            // produced: the answer records what the ledger charged (the runtime has stopped, every call is settled).
            var spend = await ledger.TurnSpendAsync(turn.UserId, turn.Id, turn.CreatedAt, CancellationToken.None);
            if (spend.Calls > 0)
            {
                (_sawUsage, _promptTokens, _completionTokens, _costNanos) = (true, (int)spend.PromptTokens, (int)spend.CompletionTokens, spend.CostNanos);
            }

            await FinishAsync(status, failure, messageStatus, stored, null);
        }

        private async Task FinishAsync(string status, TurnFailure? failure, string messageStatus, IReadOnlyList<StoredEvent> events, long? budgetRemaining)
        {
            await store.FinishAsync(turn, new TurnEnding(status, failure, _text.ToString(), messageStatus,
                _sawUsage ? _promptTokens : null, _sawUsage ? _completionTokens : null, _costNanos, budgetRemaining, events), time.GetUtcNow(), CancellationToken.None);
            hub.Notify(turn.Id);
        }

        /// <summary>Takes in a batch: adds its text and usage to the turn's, and gives its stored events (a run of deltas as one).</summary>
        private List<StoredEvent> Record(IReadOnlyList<AgentEvent> batch)
        {
            var stored = new List<StoredEvent>(batch.Count);
            var deltaStart = -1;
            for (var i = 0; i < batch.Count; i++)
            {
                switch (batch[i])
                {
                    case AgentEvent.MessageDelta delta:
                        _text.Append(delta.Text);
                        deltaStart = deltaStart < 0 ? _text.Length - delta.Text.Length : deltaStart;
                        if (i + 1 < batch.Count && batch[i + 1] is AgentEvent.MessageDelta)
                        {
                            continue;
                        }

                        stored.Add(TurnEvents.Create(++_seq, TurnEvents.MessageDelta, new TextData(_text.ToString(deltaStart, _text.Length - deltaStart))));
                        deltaStart = -1;
                        continue;
                    case AgentEvent.Usage usage:
                        _sawUsage = true;
                        _promptTokens += usage.PromptTokens;
                        _completionTokens += usage.CompletionTokens;
                        _costNanos = usage.CostNanos is null ? _costNanos : (_costNanos ?? 0) + usage.CostNanos;
                        break;
                }

                if (TurnEvents.From(_seq + 1, batch[i]) is { } streamed)
                {
                    _seq++;
                    stored.Add(streamed);
                }
            }

            return stored;
        }
    }
}
