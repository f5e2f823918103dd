using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using AiChat.Api.Agents;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>A stored turn waiting to run, with the user's text.</summary>
public sealed record TurnWork(TurnRecord Turn, string Content);

/// <summary>
/// Runs turns on the server, independent of the requests that started them: a bounded queue (full → the caller
/// answers 503) feeding a fixed number of workers. A client that goes away does not stop its turn; a cancel does.
/// On shutdown it waits for running turns up to a grace period, then closes the rest as failed.
/// </summary>
public sealed partial class TurnExecutor(
    TurnStore store,
    TurnHub hub,
    AgentService agents,
    Billing.Ledger ledger,
    IOptions<ChatOptions> options,
    TimeProvider time,
    ILogger<TurnExecutor> logger) : IHostedService
{
    private readonly Channel<TurnWork> _queue = Channel.CreateUnbounded<TurnWork>();

    // A place in the queue is taken before the turn is stored and given back when a worker picks the turn up.
    private readonly SemaphoreSlim _places = new(Math.Max(1, options.Value.QueueCapacity));

    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _running = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task[] _workers = [];

    public int Running => _running.Count;

    /// <summary>Takes a place in the queue for a turn about to be stored; false when the queue is full.</summary>
    public bool TryReserve() => !_stopping.IsCancellationRequested && _places.Wait(0);

    /// <summary>Gives back a reserved place whose turn was not stored after all.</summary>
    public void Unreserve() => _places.Release();

    /// <summary>Queues a stored turn into the place reserved for it.</summary>
    public void Enqueue(TurnWork work)
    {
        if (!_queue.Writer.TryWrite(work))
        {
            _places.Release();
            throw new InvalidOperationException("The turn queue is closed.");
        }
    }

    /// <summary>Cancels a turn running on this instance; other instances notice the stored request at their next heartbeat.</summary>
    public void Cancel(Guid turnId)
    {
        if (_running.TryGetValue(turnId, out var cancellation))
        {
            cancellation.Cancel();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _workers = Enumerable.Range(0, Math.Max(1, options.Value.Workers)).Select(_ => Task.Run(WorkAsync, CancellationToken.None)).ToArray();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        var grace = Task.Delay(options.Value.ShutdownGrace, CancellationToken.None);
        await Task.WhenAny(Task.WhenAll(_workers), grace);
        await _stopping.CancelAsync(); // turns still running now are closed as failed by their workers
        await Task.WhenAll(_workers).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task WorkAsync()
    {
        await foreach (var work in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            _places.Release();
            try
            {
                await RunAsync(work);
            }
            catch (Exception ex)
            {
                LogTurnCrashed(logger, ex, work.Turn.Id);
            }
        }
    }

    private async Task RunAsync(TurnWork work)
    {
        var turn = work.Turn;
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        _running[turn.Id] = cancellation;
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(turn.Id, cancellation, heartbeatStop.Token);
        var outcome = new Outcome(turn, store, hub, ledger, time);
        try
        {
            if (_stopping.IsCancellationRequested)
            {
                await outcome.FailAsync(StatusCodes.Status503ServiceUnavailable, "shutting_down", "The server was shutting down; send the message again.");
                return;
            }

            var agent = await agents.GetAsync(turn.UserId, cancellation.Token);
            var events = agents.RunTurnAsync(agent, new TurnInput(turn.UserId, turn.Id, work.Content), options.Value.AgentWait, cancellation.Token);
            AgentEvent? last = null;
            await foreach (var agentEvent in Coalesce(events, options.Value.DeltaCoalescing, cancellation.Token))
            {
                if (agentEvent is AgentEvent.Completed or AgentEvent.Failed)
                {
                    last = agentEvent;
                    break; // leaving the loop ends the runtime's turn and releases the agent before the end is announced
                }

                await outcome.RecordAsync(agentEvent);
            }

            switch (last)
            {
                case AgentEvent.Completed completed:
                    await outcome.CompleteAsync(completed.Text);
                    return;
                case AgentEvent.Failed failed when failed.Code != "cancelled":
                    await outcome.FailAsync(LlmErrors.StatusFor(failed.Code), failed.Code, failed.Detail, failed.Extensions);
                    return;
            }

            cancellation.Token.ThrowIfCancellationRequested();
            await outcome.FailAsync(StatusCodes.Status502BadGateway, "agent_stream_ended", "The agent stopped without finishing its answer.");
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            if (_stopping.IsCancellationRequested)
            {
                await outcome.FailAsync(StatusCodes.Status503ServiceUnavailable, "shutting_down", "The server shut down before the answer was finished.");
            }
            else
            {
                await outcome.CancelAsync();
            }
        }
        catch (AgentBusyException)
        {
            await outcome.FailAsync(StatusCodes.Status409Conflict, AgentApi.AgentBusy, "The agent was still busy with an earlier message.");
        }
        catch (Exception ex)
        {
            LogTurnCrashed(logger, ex, turn.Id);
            await outcome.FailAsync(StatusCodes.Status500InternalServerError, "internal_error", "The turn failed unexpectedly. It has been logged.");
        }
        finally
        {
            await heartbeatStop.CancelAsync();
            await heartbeat;
            _running.TryRemove(turn.Id, out _);
            hub.Notify(turn.Id);
        }
    }

    private async Task HeartbeatAsync(Guid turnId, CancellationTokenSource turn, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(options.Value.HeartbeatInterval, time, stop);
                await store.HeartbeatAsync(turnId, time.GetUtcNow(), stop);
                if (await store.IsCancelRequestedAsync(turnId, stop))
                {
                    await turn.CancelAsync();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            LogHeartbeatFailed(logger, ex, turnId);
        }
    }

    /// <summary>Gathers message deltas that arrive within <paramref name="window"/> into one, so a token-by-token stream costs fewer writes.</summary>
    private static async IAsyncEnumerable<AgentEvent> Coalesce(IAsyncEnumerable<AgentEvent> source, TimeSpan window, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var enumerator = source.GetAsyncEnumerator(cancellationToken);
        var pending = new StringBuilder();
        var since = DateTime.MinValue;
        Task<bool>? next = null;
        while (true)
        {
            next ??= enumerator.MoveNextAsync().AsTask();
            if (pending.Length > 0)
            {
                var remaining = window - (DateTime.UtcNow - since);
                if (remaining <= TimeSpan.Zero || await Task.WhenAny(next, Task.Delay(remaining, cancellationToken)) != next)
                {
                    yield return new AgentEvent.MessageDelta(pending.ToString());
                    pending.Clear();
                    continue;
                }
            }

            if (!await next)
            {
                break;
            }

            var current = enumerator.Current;
            next = null;
            if (current is AgentEvent.MessageDelta delta)
            {
                if (pending.Length == 0)
                {
                    since = DateTime.UtcNow;
                }

                pending.Append(delta.Text);
                continue;
            }

            if (pending.Length > 0)
            {
                yield return new AgentEvent.MessageDelta(pending.ToString());
                pending.Clear();
            }

            yield return current;
        }

        if (pending.Length > 0)
        {
            yield return new AgentEvent.MessageDelta(pending.ToString());
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Turn {TurnId} crashed")]
    private static partial void LogTurnCrashed(ILogger logger, Exception exception, Guid turnId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat of turn {TurnId} failed")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception, Guid turnId);

    /// <summary>What a turn has said so far, and how it ends: every event is stored before followers are woken.</summary>
    private sealed class Outcome(TurnRecord turn, TurnStore store, TurnHub hub, Billing.Ledger ledger, TimeProvider time)
    {
        private readonly StringBuilder _text = new();
        private int _seq = turn.LastEventSeq;
        private int _promptTokens;
        private int _completionTokens;
        private decimal? _cost;
        private bool _sawUsage;

        public async Task RecordAsync(AgentEvent agentEvent)
        {
            switch (agentEvent)
            {
                case AgentEvent.MessageDelta delta:
                    _text.Append(delta.Text);
                    break;
                case AgentEvent.Usage usage:
                    _sawUsage = true;
                    _promptTokens += usage.PromptTokens;
                    _completionTokens += usage.CompletionTokens;
                    _cost = usage.CostUsd is null ? _cost : (_cost ?? 0) + usage.CostUsd;
                    break;
            }

            var budget = agentEvent is AgentEvent.Usage ? await BudgetAsync() : null;
            if (TurnEvents.From(_seq + 1, agentEvent, budget) is { } stored)
            {
                _seq++;
                // The turn's own token would be cancelled by a cancel request; what was said must still be stored.
                await store.AppendEventsAsync(turn.Id, [stored], time.GetUtcNow(), CancellationToken.None);
                hub.Notify(turn.Id);
            }
        }

        public async Task CompleteAsync(string text)
        {
            var usage = Usage();
            var message = new
            {
                id = turn.AssistantMessageId,
                role = "assistant",
                content = text,
                status = MessageStatus.Complete,
                usage,
                created_at = turn.CreatedAt.AddTicks(10),
            };
            await FinishAsync(TurnStatus.Completed, null, text, MessageStatus.Complete,
                TurnEvents.Create(_seq + 1, TurnEvents.Completed, new { assistant_message = message, usage, budget = await BudgetAsync() }));
        }

        public Task CancelAsync() => FinishAsync(TurnStatus.Cancelled, "cancelled", _text.ToString(), MessageStatus.Cancelled,
            TurnEvents.Problem(_seq + 1, StatusCodes.Status409Conflict, "cancelled", "The turn was cancelled.", turn.Id));

        public Task FailAsync(int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null) =>
            FinishAsync(TurnStatus.Failed, code, _text.ToString(), MessageStatus.Failed, TurnEvents.Problem(_seq + 1, status, code, detail, turn.Id, extensions));

        private async Task<object?> BudgetAsync() =>
            await ledger.GetStateAsync(turn.UserId, CancellationToken.None) is { } state ? new { remaining_usd = Billing.PriceTable.ToUsd(state.Remaining) } : null;

        private object? Usage() => _sawUsage
            ? new { prompt_tokens = _promptTokens, completion_tokens = _completionTokens, total_tokens = _promptTokens + _completionTokens, cost_usd = _cost }
            : null;

        private async Task FinishAsync(string status, string? errorCode, string text, string messageStatus, StoredEvent last)
        {
            await store.FinishAsync(turn, status, errorCode, text, messageStatus,
                _sawUsage ? _promptTokens : null, _sawUsage ? _completionTokens : null, _cost is null ? null : (long)(_cost.Value * 1_000_000_000m),
                last, time.GetUtcNow(), CancellationToken.None);
            hub.Notify(turn.Id);
        }
    }
}
