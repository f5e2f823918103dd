using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Agents;

/// <summary>
/// The built-in agent runtime, modelled on Letta's memory design: core blocks in the prompt, archival memory and the
/// transcript behind search tools, a running summary of older turns, and a bounded tool loop, with the LLM reached
/// through the metered <see cref="IChatClient"/> pipeline (every call is charged to the turn's user).
/// </summary>
public sealed partial class BuiltInRuntime(
    AgentStore agents,
    MemoryStore store,
    ITranscript transcript,
    IChatClient chat,
    ContextAssembler assembler,
    TokenCounter tokens,
    ModelCatalog models,
    IOptions<LlmOptions> llmOptions,
    IOptions<AgentOptions> agentOptions,
    TimeProvider time,
    ILogger<BuiltInRuntime> logger) : IAgentRuntime
{
    public string Name => AgentRuntimes.BuiltIn;

    public Task<string?> CreateAsync(AgentRecord agent, AgentDefaults defaults, CancellationToken cancellationToken) =>
        Task.FromResult<string?>(null); // the agents row and its blocks are the whole agent

    public Task DeleteAsync(AgentRecord agent, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(AgentRecord agent, CancellationToken cancellationToken) =>
        store.GetBlocksAsync(agent.Id, cancellationToken);

    public Task<IReadOnlyList<MemoryBlock>> UpdateBlocksAsync(AgentRecord agent, IReadOnlyList<BlockUpdate> updates, CancellationToken cancellationToken) =>
        store.UpdateBlocksAsync(agent.Id, updates, time.GetUtcNow(), cancellationToken);

    public Task<IReadOnlyList<ArchivalPassage>> ListArchivalAsync(AgentRecord agent, string? query, int limit, CancellationToken cancellationToken) =>
        store.ListPassagesAsync(agent.Id, query, limit, cancellationToken);

    public Task<int> CountArchivalAsync(AgentRecord agent, CancellationToken cancellationToken) => store.CountPassagesAsync(agent.Id, cancellationToken);

    public Task<ArchivalPassage> InsertArchivalAsync(AgentRecord agent, string text, CancellationToken cancellationToken) =>
        store.InsertPassageAsync(agent.Id, text, time.GetUtcNow(), cancellationToken);

    public Task<bool> DeleteArchivalAsync(AgentRecord agent, string passageId, CancellationToken cancellationToken) =>
        Guid.TryParse(passageId, out var id) ? store.DeletePassageAsync(agent.Id, id, cancellationToken) : Task.FromResult(false);

    public async Task ResetAsync(AgentRecord agent, ResetScope scope, AgentDefaults defaults, CancellationToken cancellationToken)
    {
        if (scope is ResetScope.Conversation or ResetScope.All
            && (agent.Conversation ?? await agents.GetConversationAsync(agent.UserId, null, cancellationToken)) is { } conversation)
        {
            await agents.ForgetConversationAsync(conversation.Id, await transcript.LastSeqAsync(conversation.Id, cancellationToken), cancellationToken);
        }

        if (scope is ResetScope.Memory or ResetScope.All)
        {
            await store.ReplaceBlocksAsync(agent.Id, defaults.Blocks, cancellationToken);
            await store.DeleteAllPassagesAsync(agent.Id, cancellationToken);
        }
    }

    public async Task<AgentContextInfo> GetContextAsync(AgentRecord agent, CancellationToken cancellationToken)
    {
        var conversation = agent.Conversation ?? await agents.GetConversationAsync(agent.UserId, null, cancellationToken);
        var model = models.Resolve(conversation?.Model);
        if (conversation is null)
        {
            return new AgentContextInfo(0, model.ContextWindow, 0);
        }

        var blocks = await store.GetBlocksAsync(agent.Id, cancellationToken);
        var context = await AssembleAsync(model, Guid.Empty, null, "", blocks, conversation, cancellationToken, countsOnly: true);
        return new AgentContextInfo(context.PromptTokens, model.ContextWindow, (int)conversation.MessageCount);
    }

    public Task<string?> CreateConversationAsync(AgentRecord agent, string? model, CancellationToken cancellationToken) =>
        Task.FromResult<string?>(null); // the conversations row is the whole conversation

    public Task DeleteConversationAsync(AgentRecord agent, string externalId, CancellationToken cancellationToken) => Task.CompletedTask;

    public bool CanRegenerate => true;

    public async IAsyncEnumerable<AgentEvent> RunTurnAsync(AgentRecord agent, TurnInput input, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // A channel lets the turn catch every failure and still end its stream with a Failed event.
        var events = Channel.CreateUnbounded<AgentEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var running = Task.Run(() => RunAsync(agent, input, events.Writer, stop.Token), CancellationToken.None);
        var ended = false;
        try
        {
            await foreach (var @event in events.Reader.ReadAllAsync(cancellationToken))
            {
                ended = @event is AgentEvent.Completed or AgentEvent.Failed or AgentEvent.Cancelled;
                yield return @event;
            }
        }
        finally
        {
            // A reader that leaves before the end (a cancel) stops the run; either way the turn is over only when the run
            // is: its LLM calls settled in the ledger, so what the turn records as spent is what was charged.
            if (!ended)
            {
                await stop.CancelAsync();
            }

            await running;
        }
    }

    private async Task RunAsync(AgentRecord agent, TurnInput input, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        try
        {
            var conversation = agent.Conversation ?? await agents.GetConversationAsync(agent.UserId, input.ConversationId, cancellationToken)
                ?? throw new AgentNotFoundException();
            var model = models.Resolve(conversation.Model);
            var blocks = agent.Blocks ?? await store.GetBlocksAsync(agent.Id, cancellationToken);
            var context = await AssembleAsync(model, input.TurnId, input.UserMessageId, input.Content, blocks, conversation, cancellationToken);
            if (context.HistoryTruncated)
            {
                var usage = await SummarizeAsync(agent, model, input, conversation, context.KeepFromSeq, cancellationToken);
                if (usage is not null)
                {
                    await events.WriteAsync(usage, cancellationToken);
                }

                conversation = await agents.GetConversationAsync(agent.UserId, conversation.Id, cancellationToken) ?? conversation;
                context = await AssembleAsync(model, input.TurnId, input.UserMessageId, input.Content, blocks, conversation, cancellationToken);
            }

            var tools = new MemoryTools(store, transcript, agent, input.TurnId, conversation.Id, time);
            var functions = MemoryTools.Functions;
            var messages = context.Messages;
            var prompt = messages.Count;
            var maxSteps = Math.Max(1, agentOptions.Value.MaxSteps);
            for (var step = 1; step <= maxSteps; step++)
            {
                var lastStep = step == maxSteps;
                var options = new LlmCaller(agent.UserId, input.TurnId).On(new ChatOptions
                {
                    ModelId = model.Id,
                    MaxOutputTokens = model.MaxOutputTokens,
                    Tools = lastStep ? null : [.. functions],
                });

                var calls = new List<FunctionCallContent>();
                var stepText = new StringBuilder();
                var finished = false;
                await foreach (var update in chat.GetStreamingResponseAsync(messages, options, cancellationToken))
                {
                    finished |= update.FinishReason is not null;
                    foreach (var content in update.Contents)
                    {
                        switch (content)
                        {
                            case TextContent { Text.Length: > 0 } delta:
                                stepText.Append(delta.Text);
                                await events.WriteAsync(new AgentEvent.MessageDelta(delta.Text), cancellationToken);
                                break;
                            case TextReasoningContent { Text.Length: > 0 } reasoning:
                                await events.WriteAsync(new AgentEvent.ReasoningDelta(reasoning.Text), cancellationToken);
                                break;
                            case FunctionCallContent call:
                                calls.Add(call);
                                break;
                            case UsageContent usage:
                                await events.WriteAsync(UsageOf(model, update.ModelId, usage.Details, update.Contents), cancellationToken);
                                break;
                        }
                    }
                }

                if (!finished)
                {
                    // An OpenAI-compatible stream always ends with a finish reason; without one the reply was cut off.
                    throw new LlmStreamIncompleteException();
                }

                if (calls.Count == 0)
                {
                    // The whole answer is what this turn's steps said, kept for the model as its assistant messages.
                    var said = string.Concat(messages.Skip(prompt).Where(m => m.Role == ChatRole.Assistant).Select(m => m.Text));
                    await events.WriteAsync(new AgentEvent.Completed(said + stepText, lastStep && step > 1 ? "max_steps" : "end_turn"), cancellationToken);
                    return;
                }

                messages.Add(new ChatMessage(ChatRole.Assistant, [.. (stepText.Length > 0 ? new AIContent[] { new TextContent(stepText.ToString()) } : []), .. calls]));
                foreach (var call in calls)
                {
                    var arguments = JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>());
                    await events.WriteAsync(new AgentEvent.ToolCall(call.Name, arguments), cancellationToken);
                    var result = await InvokeAsync(tools, call, cancellationToken);
                    var ok = !result.StartsWith("Error", StringComparison.Ordinal);
                    await events.WriteAsync(new AgentEvent.ToolResult(call.Name, ok), cancellationToken);
                    if (ok && MemoryToolNames.ChangesBlock(call.Name) && MemoryToolNames.Argument(call, "label") is { } label)
                    {
                        await events.WriteAsync(new AgentEvent.MemoryUpdated(label), cancellationToken);
                    }

                    messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, result)]));
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            events.TryWrite(new AgentEvent.Cancelled());
        }
        catch (Exception ex)
        {
            LogTurnFailed(logger, ex, input.TurnId);
            var failure = LlmErrors.Describe(ex);
            events.TryWrite(new AgentEvent.Failed(failure.Code, failure.Detail, failure.Figures) { Status = failure.Status });
        }
        finally
        {
            events.TryComplete();
        }
    }

    /// <summary>
    /// The context of one step: the summary, then the messages it does not cover (those after the summary and after the
    /// last reset), newest first, within the context limit (<see cref="LlmOptions.ContextBudgetTokens"/>, never above the window).
    /// </summary>
    private Task<AssembledContext> AssembleAsync(CatalogModel model, Guid turnId, Guid? answeredMessageId, string userMessage, IReadOnlyList<MemoryBlock> blocks, ConversationState conversation, CancellationToken cancellationToken, bool countsOnly = false) =>
        assembler.AssembleAsync(
            blocks,
            conversation.Summary,
            userMessage,
            llmOptions.Value.ContextLimit(model.ContextWindow),
            model.MaxOutputTokens,
            (before, limit) => transcript.RecentAsync(conversation.Id, turnId, answeredMessageId, Math.Max(conversation.SummaryThroughSeq, conversation.ResetSeq), before, limit, cancellationToken, countsOnly));

    /// <summary>
    /// Folds the messages older than <paramref name="keepFromSeq"/> that the summary does not cover yet into it (newest
    /// of them first, as many as one summarisation prompt within the context limit holds), so the messages kept fill half
    /// the room for history and the next turns need no summary until it fills again. What is older than the fold stays
    /// out of the summary but searchable with conversation_search.
    /// </summary>
    private async Task<AgentEvent.Usage?> SummarizeAsync(AgentRecord agent, CatalogModel model, TurnInput input, ConversationState conversation, long keepFromSeq, CancellationToken cancellationToken)
    {
        var budget = llmOptions.Value.ContextLimit(model.ContextWindow) - model.MaxOutputTokens - ContextAssembler.ToolReserve;
        var fold = new List<TranscriptMessage>();
        var used = tokens.Count(conversation.Summary) + SummaryInstructionTokens;
        var before = keepFromSeq;
        var full = false;
        while (!full)
        {
            var page = await transcript.RecentAsync(conversation.Id, input.TurnId, input.UserMessageId, Math.Max(conversation.SummaryThroughSeq, conversation.ResetSeq), before, ContextAssembler.PageSize, cancellationToken);
            foreach (var message in page)
            {
                var cost = (message.Tokens is { } stored ? stored : tokens.Count(message.Content)) + TokenCounter.PerMessageOverhead;
                if (used + cost > budget)
                {
                    if (fold.Count == 0)
                    {
                        // One message larger than a summary prompt: its beginning stands for it, so the summary still moves on.
                        fold.Add(message with { Content = tokens.Truncate(message.Content, Math.Max(1, budget - used - TokenCounter.PerMessageOverhead)) });
                    }

                    full = true;
                    break;
                }

                used += cost;
                fold.Add(message);
            }

            if (page.Count < ContextAssembler.PageSize)
            {
                break;
            }

            before = page[^1].Seq;
        }

        if (fold.Count == 0)
        {
            return null;
        }

        fold.Reverse();
        var prompt = new List<ChatMessage>
        {
            new(ChatRole.System, $"{OfflineChatClient.SummarizeMarker} Summarise the conversation below for your own memory in at most {agentOptions.Value.MaxSummaryChars} characters. Keep facts about the user, decisions and open questions. Start from the previous summary if there is one."),
        };
        if (!string.IsNullOrWhiteSpace(conversation.Summary))
        {
            prompt.Add(new ChatMessage(ChatRole.User, $"Previous summary: {conversation.Summary}"));
        }

        prompt.AddRange(fold.Select(m => new ChatMessage(m.Role == "assistant" ? ChatRole.Assistant : ChatRole.User, m.Content)));
        var response = await chat.GetResponseAsync(
            prompt,
            new LlmCaller(agent.UserId, input.TurnId).On(new ChatOptions { ModelId = model.Id, MaxOutputTokens = model.MaxOutputTokens }),
            cancellationToken);
        var summary = response.Text.Length > agentOptions.Value.MaxSummaryChars ? response.Text[..agentOptions.Value.MaxSummaryChars] : response.Text;
        await agents.SaveSummaryAsync(conversation.Id, summary, keepFromSeq - 1, cancellationToken);
        return response.Usage is { } usage ? UsageOf(model, response.ModelId, usage, response.Messages.SelectMany(m => m.Contents)) : null;
    }

    /// <summary>Room for the summarisation prompt's own instructions, beside the previous summary and the folded messages.</summary>
    private const int SummaryInstructionTokens = 100;

    private static async Task<string> InvokeAsync(MemoryTools tools, FunctionCallContent call, CancellationToken cancellationToken)
    {
        var function = MemoryTools.Functions.FirstOrDefault(f => f.Name == call.Name);
        if (function is null)
        {
            return $"Error: there is no tool named '{call.Name}'.";
        }

        try
        {
            var result = await function.InvokeAsync(tools.Arguments(call.Arguments ?? new Dictionary<string, object?>()), cancellationToken);
            return result switch
            {
                string text => text,
                JsonElement { ValueKind: JsonValueKind.String } json => json.GetString() ?? "",
                _ => result?.ToString() ?? "",
            };
        }
        catch (Exception ex) when (ex is ArgumentException or JsonException or InvalidOperationException)
        {
            return $"Error: the arguments do not fit the tool ({ex.GetType().Name}).";
        }
    }

    /// <summary>A call's usage, with what the metering pipeline charged for it (it adds the charge beside the usage).</summary>
    private static AgentEvent.Usage UsageOf(CatalogModel asked, string? model, UsageDetails usage, IEnumerable<AIContent> contents)
    {
        var charge = contents.OfType<LlmCharge>().FirstOrDefault();
        return new AgentEvent.Usage(
            charge?.Model ?? model ?? asked.Id,
            (int)(usage.InputTokenCount ?? 0),
            (int)(usage.OutputTokenCount ?? 0),
            charge?.CostNanos,
            charge?.RemainingNanos);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Turn {TurnId} failed")]
    private static partial void LogTurnFailed(ILogger logger, Exception exception, Guid turnId);
}
