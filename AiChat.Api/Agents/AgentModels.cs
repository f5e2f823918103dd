namespace AiChat.Api.Agents;

/// <summary>The agents row: one agent per user, on the runtime chosen when it was created.</summary>
public sealed record AgentRecord(
    Guid Id,
    Guid UserId,
    string Runtime,
    string? ExternalId,
    string Status,
    string? Model,
    DateTimeOffset CreatedAt,
    DateTimeOffset? LastActiveAt)
{
    /// <summary>The agent's state in the conversation a turn (or a reset) runs in, read with the row; else null.</summary>
    public ConversationState? Conversation { get; init; }

    /// <summary>The built-in agent's core blocks, when they were read with the row (for a turn); else null.</summary>
    public IReadOnlyList<MemoryBlock>? Blocks { get; init; }
}

public static class AgentRuntimes
{
    public const string BuiltIn = "builtin";
    public const string Letta = "letta";
}

public sealed record MemoryBlock(string Label, string Value, int Limit, string? Description, DateTimeOffset UpdatedAt);

/// <summary>A new value for a block, and who sets it (for the change log; <see cref="MemoryChangeSource.User"/> when not said).</summary>
public sealed record BlockUpdate(string Label, string Value, MemoryChangeSource? Source = null);

public sealed record ArchivalPassage(string Id, string Content, IReadOnlyList<string> Tags, DateTimeOffset CreatedAt)
{
    /// <summary>The turn whose tool saved the passage; null for passages saved through the API (and on Letta).</summary>
    public Guid? TurnId { get; init; }

    /// <summary>The conversation whose turn saved the passage; null for passages saved through the API (and on Letta).</summary>
    public Guid? ConversationId { get; init; }
}

public static class MemoryChangeKinds
{
    /// <summary>The built-in agent's memory tool, in a turn.</summary>
    public const string Tool = "tool";

    /// <summary>The user, through the API (an update or a memory reset).</summary>
    public const string User = "user";

    /// <summary>An MCP client, through the MCP server, signed in with a personal API key (its id is recorded).</summary>
    public const string Mcp = "mcp";

    /// <summary>The revert endpoint, undoing an earlier change.</summary>
    public const string Revert = "revert";
}

/// <summary>Who changed a block: a kind, and where known the turn, conversation, API key, or the change a revert undid.</summary>
public sealed record MemoryChangeSource(string Kind, Guid? TurnId = null, Guid? ConversationId = null, Guid? KeyId = null, Guid? RevertsChangeId = null)
{
    public static MemoryChangeSource User { get; } = new(MemoryChangeKinds.User);

    public static MemoryChangeSource Tool(Guid turnId, Guid? conversationId = null) => new(MemoryChangeKinds.Tool, TurnId: turnId, ConversationId: conversationId);

    public static MemoryChangeSource Mcp(Guid keyId) => new(MemoryChangeKinds.Mcp, KeyId: keyId);

    public static MemoryChangeSource Revert(Guid changeId) => new(MemoryChangeKinds.Revert, RevertsChangeId: changeId);
}

/// <summary>One entry of the change log: a block's value before and after, who changed it, when.</summary>
public sealed record MemoryChange(Guid Id, long Seq, string Label, string OldValue, string NewValue, MemoryChangeSource Source, DateTimeOffset CreatedAt);

/// <summary>What an edit makes of a block's current value: its new value, or why it does not apply (then nothing changes).</summary>
public readonly record struct BlockEdit(string? Value, string? Refusal)
{
    public static BlockEdit To(string value) => new(value, null);

    public static BlockEdit Refuse(string refusal) => new(null, refusal);

    /// <summary>An append, whoever makes it (the agent's tool, MCP): the text as a new line at the end of the block.</summary>
    public static Func<string, BlockEdit> Appending(string text) =>
        value => To(string.IsNullOrEmpty(value) ? text.Trim() : $"{value.TrimEnd()}\n{text.Trim()}");

    /// <summary>A replace of exact text, whoever makes it; refused (nothing changes) when the block does not contain it.</summary>
    public static Func<string, BlockEdit> Replacing(string label, string oldText, string newText) =>
        value => string.IsNullOrEmpty(oldText) || !value.Contains(oldText, StringComparison.Ordinal)
            ? Refuse($"The '{label}' block does not contain that text.")
            : To(value.Replace(oldText, newText, StringComparison.Ordinal));
}

public enum ResetScope
{
    /// <summary>Forget the conversation (messages in context, summary); memory blocks and archival stay.</summary>
    Conversation,

    /// <summary>Restore the default blocks and empty archival memory; the conversation stays.</summary>
    Memory,

    /// <summary>Both.</summary>
    All,
}

public sealed record AgentContextInfo(int Tokens, int Window, int MessageCount);

/// <summary>What the agent says while a turn runs; the chat layer maps these onto the SSE events of DESIGN §3.1.</summary>
public abstract record AgentEvent
{
    public sealed record MessageDelta(string Text) : AgentEvent;

    public sealed record ReasoningDelta(string Text) : AgentEvent;

    /// <summary>The model asked for a tool; <paramref name="Arguments"/> is its JSON arguments.</summary>
    public sealed record ToolCall(string Name, string Arguments) : AgentEvent;

    public sealed record ToolResult(string Name, bool Ok) : AgentEvent;

    public sealed record MemoryUpdated(string Label) : AgentEvent;

    /// <summary>One LLM call's usage (a turn has one per step); its cost and the budget left after it (nano-USD) when metered here.</summary>
    public sealed record Usage(string Model, int PromptTokens, int CompletionTokens, long? CostNanos, long? RemainingNanos = null) : AgentEvent;

    /// <summary>The last event of a successful turn: the whole assistant text.</summary>
    public sealed record Completed(string Text, string StopReason) : AgentEvent;

    /// <summary>The last event of a failed turn: a stable problem code, a human detail, any figures that explain it, and its HTTP status.</summary>
    public sealed record Failed(string Code, string Detail, IReadOnlyDictionary<string, object?>? Extensions = null) : AgentEvent
    {
        public int Status { get; init; } = StatusCodes.Status502BadGateway;
    }

    /// <summary>The last event of a turn that was cancelled (by the user, or because the server is stopping).</summary>
    public sealed record Cancelled : AgentEvent;
}

/// <summary>Thrown when a memory update would exceed a block's character limit; nothing has been applied.</summary>
public sealed class MemoryLimitExceededException(string label, int limit, int requested)
    : Exception($"The '{label}' block holds at most {limit} characters (requested {requested}).")
{
    public string Label { get; } = label;

    public int Limit { get; } = limit;

    public int Requested { get; } = requested;
}

/// <summary>Thrown when a memory update names a block the agent does not have.</summary>
public sealed class UnknownBlockException(string label) : Exception($"The agent has no '{label}' block.")
{
    public string Label { get; } = label;
}

/// <summary>Thrown when the agent runtime (Letta) cannot be reached or answers unexpectedly.</summary>
public sealed class AgentRuntimeUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// An agent runtime: the built-in one (memory in AiChat's store, LLM through <c>IChatClient</c>) or Letta (its V1 REST API).
/// Callers serialise turns per conversation (one running turn per conversation in the store); a runtime may assume one turn at a time per conversation.
/// </summary>
public interface IAgentRuntime
{
    string Name { get; }

    /// <summary>Creates the agent's runtime state with the default blocks; returns the runtime's own id for it (Letta), or null.</summary>
    Task<string?> CreateAsync(AgentRecord agent, AgentDefaults defaults, CancellationToken cancellationToken);

    /// <summary>Deletes the runtime state; a missing agent is not an error.</summary>
    Task DeleteAsync(AgentRecord agent, CancellationToken cancellationToken);

    Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(AgentRecord agent, CancellationToken cancellationToken);

    /// <summary>Applies all updates or none: throws <see cref="MemoryLimitExceededException"/> or <see cref="UnknownBlockException"/> before any change.</summary>
    Task<IReadOnlyList<MemoryBlock>> UpdateBlocksAsync(AgentRecord agent, IReadOnlyList<BlockUpdate> updates, CancellationToken cancellationToken);

    /// <summary>Archival passages, newest first; with a query, the ones matching it (full-text search).</summary>
    Task<IReadOnlyList<ArchivalPassage>> ListArchivalAsync(AgentRecord agent, string? query, int limit, CancellationToken cancellationToken);

    Task<int> CountArchivalAsync(AgentRecord agent, CancellationToken cancellationToken);

    Task<ArchivalPassage> InsertArchivalAsync(AgentRecord agent, string text, CancellationToken cancellationToken);

    /// <summary>False when the passage does not exist (or belongs to another agent).</summary>
    Task<bool> DeleteArchivalAsync(AgentRecord agent, string passageId, CancellationToken cancellationToken);

    Task ResetAsync(AgentRecord agent, ResetScope scope, AgentDefaults defaults, CancellationToken cancellationToken);

    Task<AgentContextInfo> GetContextAsync(AgentRecord agent, CancellationToken cancellationToken);

    /// <summary>
    /// The runtime's own state for a new conversation of the agent: Letta makes a conversation and returns its id; the
    /// built-in runtime needs none (the conversations row is all of it) and returns null.
    /// </summary>
    Task<string?> CreateConversationAsync(AgentRecord agent, string? model, CancellationToken cancellationToken);

    /// <summary>Deletes the runtime's conversation made by <see cref="CreateConversationAsync"/>; a missing one is not an error.</summary>
    Task DeleteConversationAsync(AgentRecord agent, string externalId, CancellationToken cancellationToken);

    /// <summary>Whether a turn may answer an earlier user message again (regenerate); Letta keeps its own history and cannot.</summary>
    bool CanRegenerate { get; }

    /// <summary>
    /// Runs one turn for the user's new message and streams what happens; ends with <see cref="AgentEvent.Completed"/>
    /// or <see cref="AgentEvent.Failed"/>. The user's message is already stored by the caller.
    /// </summary>
    IAsyncEnumerable<AgentEvent> RunTurnAsync(AgentRecord agent, TurnInput input, CancellationToken cancellationToken);
}

/// <summary>One turn: whose, which, and what the user said; in which conversation (null: the user's default one).</summary>
public sealed record TurnInput(Guid UserId, Guid TurnId, string Content)
{
    public Guid? ConversationId { get; init; }

    /// <summary>The stored user message this turn answers (a regenerate answers an earlier one); it is left out of the recent history.</summary>
    public Guid? UserMessageId { get; init; }
}

/// <summary>The blocks a new (or memory-reset) agent starts with.</summary>
public sealed record AgentDefaults(IReadOnlyList<MemoryBlock> Blocks, string Model);
