using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using AiChat.Api.Infrastructure;
using AiChat.Api.Llm;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Agents.Letta;

/// <summary>
/// Agents on a Letta server: one agent per user, whose LLM calls go through a per-user provider pointing at AiChat's
/// metered endpoint with that user's key, so every call Letta makes is charged to the right user. Each AiChat
/// conversation is a Letta conversation of the agent (its own history and context window, the agent's memory), except
/// the default one, which is the agent's own (agent-direct) history.
/// Block writes made through this runtime (the API's updates, reverts, a memory reset) go into AiChat's change log
/// once Letta has applied them; the edits Letta's own tools make during a turn happen inside Letta and are not recorded.
/// </summary>
public sealed partial class LettaRuntime(
    LettaClient letta,
    IInternalLlmKeys keys,
    IOptions<LettaOptions> options,
    ILogger<LettaRuntime> logger,
    MemoryStore? changeLog = null,
    TimeProvider? time = null)
    : IAgentRuntime
{
    // Reset empties archival memory page by page; the bound only stops a server that never empties.
    private const int DeletePageSize = 100;
    private const int MaxDeletePages = 1000;

    private readonly LettaOptions settings = options.Value;

    public string Name => AgentRuntimes.Letta;

    public static string ProviderName(Guid userId) => $"aichat-{userId:N}";

    public static string AgentName(Guid userId) => $"user-{userId:N}";

    public static string UserTag(Guid userId) => $"aichat-user:{userId}";

    public async Task<string?> CreateAsync(AgentRecord agent, AgentDefaults defaults, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(settings.LlmBaseUrl))
        {
            throw new InvalidOperationException("Letta:LlmBaseUrl must say where Letta reaches AiChat's LLM endpoint.");
        }

        var providerName = ProviderName(agent.UserId);
        // A retry after a failed provisioning finds the provider the first attempt made.
        var existing = await letta.FindProviderAsync(providerName, cancellationToken);
        var providerId = existing ?? await letta.CreateProviderAsync(providerName, keys.KeyFor(agent.UserId), settings.LlmBaseUrl, cancellationToken);
        try
        {
            var spec = new LettaAgentSpec(
                AgentName(agent.UserId),
                Handle(agent.UserId, settings.Model),
                Handle(agent.UserId, settings.Embedding),
                defaults.Blocks,
                [UserTag(agent.UserId)]);
            var agentId = await letta.CreateAgentAsync(spec, cancellationToken);
            LogCreated(logger, agent.UserId, agentId);
            return agentId;
        }
        catch when (existing is null)
        {
            await DeleteProviderQuietlyAsync(providerId, agent.UserId);
            throw;
        }
    }

    public async Task DeleteAsync(AgentRecord agent, CancellationToken cancellationToken)
    {
        if (agent.ExternalId is not null)
        {
            await letta.DeleteAgentAsync(agent.ExternalId, cancellationToken);
        }

        if (await letta.FindProviderAsync(ProviderName(agent.UserId), cancellationToken) is { } providerId)
        {
            await letta.DeleteProviderAsync(providerId, cancellationToken);
        }
    }

    public Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(AgentRecord agent, CancellationToken cancellationToken) =>
        letta.GetBlocksAsync(LettaId(agent), cancellationToken);

    public async Task<IReadOnlyList<MemoryBlock>> UpdateBlocksAsync(AgentRecord agent, IReadOnlyList<BlockUpdate> updates, CancellationToken cancellationToken)
    {
        var agentId = LettaId(agent);
        var current = await letta.GetBlocksAsync(agentId, cancellationToken);
        var byLabel = current.ToDictionary(block => block.Label, StringComparer.Ordinal);
        var wanted = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var update in updates)
        {
            if (!byLabel.TryGetValue(update.Label, out var block))
            {
                throw new UnknownBlockException(update.Label);
            }

            var length = CharacterCount(update.Value);
            if (length > block.Limit)
            {
                throw new MemoryLimitExceededException(update.Label, block.Limit, length);
            }

            wanted[update.Label] = update.Value;
        }

        var applied = new List<MemoryBlock>();
        try
        {
            foreach (var (label, value) in wanted)
            {
                byLabel[label] = await letta.UpdateBlockAsync(agentId, label, value, null, cancellationToken);
                applied.Add(current.First(block => block.Label == label));
            }
        }
        catch
        {
            // Letta refused one block after others were written (another writer or a different count): put those back.
            await RestoreQuietlyAsync(agentId, applied);
            throw;
        }

        var sources = updates.ToDictionary(update => update.Label, update => update.Source ?? MemoryChangeSource.User, StringComparer.Ordinal);
        await RecordAsync(agent, wanted.Select(w => (w.Key, current.First(block => block.Label == w.Key).Value, w.Value, sources[w.Key])).ToList(), cancellationToken);
        return current.Select(block => byLabel[block.Label]).ToList();
    }

    public Task<IReadOnlyList<ArchivalPassage>> ListArchivalAsync(AgentRecord agent, string? query, int limit, CancellationToken cancellationToken) =>
        ListNewestFirstAsync(LettaId(agent), query, limit, cancellationToken);

    public async Task<int> CountArchivalAsync(AgentRecord agent, CancellationToken cancellationToken) =>
        (await letta.GetContextAsync(LettaId(agent), cancellationToken)).ArchivalPassages;

    public Task<ArchivalPassage> InsertArchivalAsync(AgentRecord agent, string text, CancellationToken cancellationToken) =>
        letta.InsertPassageAsync(LettaId(agent), text, cancellationToken);

    public Task<bool> DeleteArchivalAsync(AgentRecord agent, string passageId, CancellationToken cancellationToken) =>
        letta.DeletePassageAsync(LettaId(agent), passageId, cancellationToken);

    public async Task ResetAsync(AgentRecord agent, ResetScope scope, AgentDefaults defaults, CancellationToken cancellationToken)
    {
        var agentId = LettaId(agent);
        if (scope is ResetScope.Conversation or ResetScope.All)
        {
            await letta.ResetMessagesAsync(agentId, cancellationToken);
        }

        if (scope is ResetScope.Memory or ResetScope.All)
        {
            var before = changeLog is null ? [] : await letta.GetBlocksAsync(agentId, cancellationToken);
            foreach (var block in defaults.Blocks)
            {
                await letta.UpdateBlockAsync(agentId, block.Label, block.Value, block.Limit, cancellationToken);
            }

            await RecordAsync(
                agent,
                defaults.Blocks.Select(block => (block.Label, before.FirstOrDefault(b => b.Label == block.Label)?.Value ?? "", block.Value, MemoryChangeSource.User)).ToList(),
                cancellationToken);

            await DeleteAllPassagesAsync(agentId, cancellationToken);
        }
    }

    public async Task<AgentContextInfo> GetContextAsync(AgentRecord agent, CancellationToken cancellationToken)
    {
        var context = await letta.GetContextAsync(LettaId(agent), cancellationToken);
        return new AgentContextInfo(context.Tokens, context.Window, context.Messages);
    }

    /// <summary>A Letta conversation of the user's agent, on the conversation's model when it names one (else the agent's).</summary>
    public async Task<string?> CreateConversationAsync(AgentRecord agent, string? model, CancellationToken cancellationToken) =>
        await letta.CreateConversationAsync(LettaId(agent), Handle(agent.UserId, model), cancellationToken);

    /// <summary>Deletes the Letta conversation; one already gone is fine, and one Letta cannot delete now is logged and left behind.</summary>
    public async Task DeleteConversationAsync(AgentRecord agent, string externalId, CancellationToken cancellationToken)
    {
        try
        {
            await letta.DeleteConversationAsync(externalId, cancellationToken);
        }
        catch (AgentRuntimeUnavailableException ex)
        {
            // AiChat's conversation is gone already: failing the delete would only make the client retry into a 404.
            LogConversationLeftBehind(logger, ex, externalId, agent.UserId);
        }
    }

    /// <summary>Letta keeps its own history of every conversation, so an earlier message cannot be answered again.</summary>
    public bool CanRegenerate => false;

    /// <summary>
    /// A turn in the turn's conversation: a Letta conversation when it has one (its system message compiled
    /// again first, so memory written elsewhere is in it), else the agent-direct default one. A cancelled turn in a Letta
    /// conversation cancels its run there too; the agent-direct endpoint could only cancel every conversation's runs.
    /// </summary>
    public async IAsyncEnumerable<AgentEvent> RunTurnAsync(AgentRecord agent, TurnInput input, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var agentId = LettaId(agent);
        var conversationId = agent.Conversation?.ExternalId;
        var model = agent.Conversation?.Model;
        Stream? stream = null;
        AgentEvent.Failed? refused = null;
        try
        {
            if (conversationId is null)
            {
                stream = await letta.SendMessageStreamAsync(agentId, input.Content, Handle(agent.UserId, model), cancellationToken);
            }
            else
            {
                // Letta compiles a conversation's system message (the memory blocks in it) only when the conversation is made.
                await letta.RecompileConversationAsync(conversationId, cancellationToken);
                stream = await letta.SendConversationMessageStreamAsync(conversationId, input.Content, Handle(agent.UserId, model), cancellationToken);
            }
        }
        catch (AgentRuntimeUnavailableException ex)
        {
            LogTurnRefused(logger, input.TurnId, ex.Message);
            refused = UpstreamUnavailableException.In(ex) is { } open
                ? new AgentEvent.Failed(ProblemCodes.UpstreamUnavailable, "Letta is failing; AiChat stopped calling it for a while. Try again after the Retry-After delay.",
                    Problems.RetryAfterFigures(open.RetryAfterSeconds)) { Status = StatusCodes.Status503ServiceUnavailable }
                : new AgentEvent.Failed(AgentProblems.AgentUnavailable, ex.Message);
        }
        catch (OperationCanceledException) when (conversationId is not null)
        {
            await CancelRunAsync(conversationId, input.TurnId);
            throw;
        }

        if (refused is not null)
        {
            yield return refused;
            yield break;
        }

        await using (stream)
        {
            try
            {
                await foreach (var item in LettaStreamParser.ParseAsync(stream!, model ?? settings.Model, cancellationToken))
                {
                    switch (item)
                    {
                        case AgentEvent.Failed { Code: LettaStreamParser.CancelledCode }:
                            yield return new AgentEvent.Cancelled(); // Letta's word for it, as the type the chat understands
                            continue;
                        case AgentEvent.Failed failed:
                            LogTurnFailed(logger, input.TurnId, failed.Code, failed.Detail);
                            break;
                    }

                    yield return item;
                }
            }
            finally
            {
                // Letta runs on when its client goes away: a cancelled turn must stop the run, or it keeps the conversation busy.
                if (conversationId is not null && cancellationToken.IsCancellationRequested)
                {
                    await CancelRunAsync(conversationId, input.TurnId);
                }
            }
        }
    }

    private async Task<IReadOnlyList<ArchivalPassage>> ListNewestFirstAsync(string agentId, string? query, int limit, CancellationToken cancellationToken)
    {
        var passages = await letta.ListPassagesAsync(agentId, query, limit, newestFirst: true, cancellationToken);
        return passages.OrderByDescending(passage => passage.CreatedAt).ToList();
    }

    private async Task DeleteAllPassagesAsync(string agentId, CancellationToken cancellationToken)
    {
        for (var page = 0; page < MaxDeletePages; page++)
        {
            var passages = await letta.ListPassagesAsync(agentId, null, DeletePageSize, newestFirst: false, cancellationToken);
            if (passages.Count == 0)
            {
                return;
            }

            foreach (var passage in passages)
            {
                await letta.DeletePassageAsync(agentId, passage.Id, cancellationToken);
            }
        }

        throw new AgentRuntimeUnavailableException("Letta kept listing archival passages after they were deleted.");
    }

    private Task RecordAsync(AgentRecord agent, IReadOnlyList<(string Label, string OldValue, string NewValue, MemoryChangeSource Source)> changes, CancellationToken cancellationToken) =>
        changeLog is null ? Task.CompletedTask : changeLog.RecordChangesAsync(agent.Id, changes, (time ?? TimeProvider.System).GetUtcNow(), cancellationToken);

    private async Task RestoreQuietlyAsync(string agentId, IReadOnlyList<MemoryBlock> previous)
    {
        foreach (var block in previous)
        {
            try
            {
                await letta.UpdateBlockAsync(agentId, block.Label, block.Value, null, CancellationToken.None);
            }
            catch (Exception ex) when (ex is AgentRuntimeUnavailableException or MemoryLimitExceededException or UnknownBlockException)
            {
                LogRestoreFailed(logger, ex, agentId, block.Label);
            }
        }
    }

    private async Task DeleteProviderQuietlyAsync(string providerId, Guid userId)
    {
        try
        {
            await letta.DeleteProviderAsync(providerId, CancellationToken.None);
        }
        catch (AgentRuntimeUnavailableException ex)
        {
            LogProviderCleanupFailed(logger, ex, userId);
        }
    }

    // The turn has ended either way; its Letta run is stopped as best it can be, and a failure only logged.
    private async Task CancelRunAsync(string conversationId, Guid turnId)
    {
        try
        {
            var cancelled = await letta.CancelConversationAsync(conversationId, CancellationToken.None);
            LogRunCancelled(logger, turnId, conversationId, cancelled);
        }
        catch (AgentRuntimeUnavailableException ex)
        {
            LogCancelFailed(logger, ex, turnId, conversationId);
        }
    }

    /// <summary>Letta's handle for a model behind the user's provider (AiChat's metered endpoint), or null for none.</summary>
    [return: NotNullIfNotNull(nameof(model))]
    private static string? Handle(Guid userId, string? model) => model is null ? null : $"{ProviderName(userId)}/{model}";

    private static string LettaId(AgentRecord agent) =>
        agent.ExternalId ?? throw new InvalidOperationException($"Agent {agent.Id} has no Letta agent id.");

    // Letta counts a block's characters as Python does: code points, not UTF-16 units.
    private static int CharacterCount(string value)
    {
        var count = 0;
        foreach (var _ in value.EnumerateRunes())
        {
            count++;
        }

        return count;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created Letta agent {AgentId} for user {UserId}")]
    private static partial void LogCreated(ILogger logger, Guid userId, string agentId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Letta refused turn {TurnId}: {Reason}")]
    private static partial void LogTurnRefused(ILogger logger, Guid turnId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Letta turn {TurnId} failed ({Code}): {Detail}")]
    private static partial void LogTurnFailed(ILogger logger, Guid turnId, string code, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Turn {TurnId} was cancelled; Letta conversation {ConversationId} had a run to cancel: {Cancelled}")]
    private static partial void LogRunCancelled(ILogger logger, Guid turnId, string conversationId, bool cancelled);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Turn {TurnId} was cancelled, but its run in Letta conversation {ConversationId} could not be cancelled")]
    private static partial void LogCancelFailed(ILogger logger, Exception exception, Guid turnId, string conversationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete Letta conversation {ConversationId} of user {UserId}; it is left behind in Letta")]
    private static partial void LogConversationLeftBehind(ILogger logger, Exception exception, string conversationId, Guid userId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not restore block {Label} of Letta agent {AgentId} after a failed update")]
    private static partial void LogRestoreFailed(ILogger logger, Exception exception, string agentId, string label);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not remove the Letta provider of user {UserId} after a failed agent creation")]
    private static partial void LogProviderCleanupFailed(ILogger logger, Exception exception, Guid userId);
}
