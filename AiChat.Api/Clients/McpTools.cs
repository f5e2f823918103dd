using System.ComponentModel;
using System.Security.Claims;
using AiChat.Api.Agents;
using AiChat.Api.Chat;
using AiChat.Api.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace AiChat.Api.Clients;

/// <summary>
/// The MCP server's tools, over the signed-in user's memory and conversations (the user is the personal API key's owner):
/// read the core memory, append to or replace text in a block (its limit enforced; nothing changes over it), insert into
/// and search archival memory, search the conversations, list them, and send a message to the agent in a conversation.
/// Every block change is recorded in the change log as made through MCP by the key. A refusal is a tool error whose text
/// says why (the SDK sends an <see cref="McpException"/>'s message to the client).
/// </summary>
[McpServerToolType]
public sealed class McpTools(
    AgentService agents, AgentMemory memory, MessageStore messages, ConversationStore conversations, TurnService turns, TurnFollower follower, MessageAllowance allowance, TimeProvider time)
{
    public const int MaxTextChars = 20_000;

    [McpServerTool(Name = "read_core_memory", ReadOnly = true), Description("Read the agent's core memory: every block with its label, value and character limit.")]
    public async Task<IReadOnlyList<CoreBlock>> ReadCoreMemoryAsync(RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context, CancellationToken cancellationToken)
    {
        var agent = await agents.GetAsync(UserOf(context).UserId(), cancellationToken);
        var blocks = await agents.RuntimeFor(agent).GetBlocksAsync(agent, cancellationToken);
        return blocks.Select(block => new CoreBlock(block.Label, block.Value, block.Value.Length, block.Limit)).ToList();
    }

    [McpServerTool(Name = "append_core_memory", Destructive = false), Description("Append a line to a core memory block (e.g. 'human' for facts about the user). Refused when the block would pass its limit.")]
    public Task<CoreBlock> AppendCoreMemoryAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("The block's label, e.g. human or persona")] string label,
        [Description("The text to append")] string text,
        CancellationToken cancellationToken) =>
        string.IsNullOrWhiteSpace(text)
            ? throw new McpException("The text to append is empty.")
            : EditAsync(context, label, (agent, source) => memory.AppendAsync(agent, label, text, source, cancellationToken), cancellationToken);

    [McpServerTool(Name = "replace_core_memory"), Description("Replace text in a core memory block: old_text must occur in the block exactly. Refused when the block would pass its limit.")]
    public Task<CoreBlock> ReplaceCoreMemoryAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("The block's label")] string label,
        [Description("The exact text to replace")] string old_text,
        [Description("The new text (may be empty to delete)")] string new_text,
        CancellationToken cancellationToken) =>
        EditAsync(context, label, (agent, source) => memory.ReplaceAsync(agent, label, old_text, new_text ?? "", source, cancellationToken), cancellationToken);

    [McpServerTool(Name = "archival_memory_insert", Destructive = false), Description("Save a passage to the agent's long-term archival memory.")]
    public async Task<Passage> InsertArchivalAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("The passage to remember")] string text,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxTextChars)
        {
            throw new McpException($"The passage has 1 to {MaxTextChars} characters.");
        }

        var agent = await agents.GetAsync(UserOf(context).UserId(), cancellationToken);
        var passage = await agents.RuntimeFor(agent).InsertArchivalAsync(agent, text.Trim(), cancellationToken);
        return new Passage(passage.Id, passage.Content, passage.CreatedAt);
    }

    [McpServerTool(Name = "archival_memory_search", ReadOnly = true), Description("Search the agent's archival memory by keywords (full text), best matches first.")]
    public async Task<IReadOnlyList<Passage>> SearchArchivalAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("Keywords")] string query,
        [Description("At most this many passages (1-50, default 10)")] int? limit = null,
        CancellationToken cancellationToken = default)
    {
        var size = CheckSearch(query, limit);
        var agent = await agents.GetAsync(UserOf(context).UserId(), cancellationToken);
        var found = await agents.RuntimeFor(agent).ListArchivalAsync(agent, query, size, cancellationToken);
        return found.Select(p => new Passage(p.Id, p.Content, p.CreatedAt)).ToList();
    }

    [McpServerTool(Name = "conversation_search", ReadOnly = true), Description("Search the messages of all of the user's conversations by keywords; each hit names its conversation.")]
    public async Task<IReadOnlyList<ConversationHit>> SearchConversationsAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("Keywords")] string query,
        [Description("At most this many hits (1-50, default 10)")] int? limit = null,
        CancellationToken cancellationToken = default)
    {
        var size = CheckSearch(query, limit);
        var hits = await messages.SearchAsync(UserOf(context).UserId(), query, size, cancellationToken);
        return hits.Select(hit => new ConversationHit(hit.ConversationId, hit.ConversationTitle, hit.Id, hit.Role, hit.Content, hit.CreatedAt)).ToList();
    }

    [McpServerTool(Name = "list_conversations", ReadOnly = true), Description("List the user's conversations, most recently active first.")]
    public async Task<IReadOnlyList<ConversationItem>> ListConversationsAsync(RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context, CancellationToken cancellationToken) =>
        (await conversations.AllAsync(UserOf(context).UserId(), cancellationToken))
            .Take(100)
            .Select(c => new ConversationItem(c.Id, c.Title, c.IsDefault, c.MessageCount, c.LastMessageAt))
            .ToList();

    [McpServerTool(Name = "send_message", Destructive = false), Description(
        "Send a message to the agent in a conversation and get its answer (the agent uses its memory and tools). The conversation is named by its id or its exact title; a title no conversation has starts a new conversation with that title.")]
    public async Task<AgentAnswer> SendMessageAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        [Description("The conversation's id or exact title")] string conversation,
        [Description("The message")] string message,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(message) || message.Length > MaxTextChars)
        {
            throw new McpException($"The message has 1 to {MaxTextChars} characters.");
        }

        if (string.IsNullOrWhiteSpace(conversation) || conversation.Length > ConversationApi.MaxTitleChars)
        {
            throw new McpException($"Name the conversation by its id or title (1 to {ConversationApi.MaxTitleChars} characters).");
        }

        var userId = UserOf(context).UserId();
        // The same allowance as the user's messages everywhere else.
        if (!allowance.TryTake(userId, out var retryAfter))
        {
            throw new McpException($"At most {allowance.PerMinute} messages a minute; this one was not sent. Try again in {(int)Math.Ceiling(retryAfter.TotalSeconds)} s.");
        }

        var target = await FindOrStartAsync(userId, conversation.Trim(), cancellationToken);
        var start = await turns.StartAsync(userId, target.Id, message, null, cancellationToken);
        if (start is not TurnStart.Started { Turn: var turn })
        {
            throw new McpException(start switch
            {
                TurnStart.Busy => "This conversation is answering another message; send this one when that answer has ended.",
                TurnStart.TooManyTurns { Max: var max } => $"{max} answers are running in other conversations; try again when one has ended.",
                TurnStart.QueueFull => "The server is busy; try again shortly.",
                _ => "The message could not be sent.",
            });
        }

        var result = await follower.WaitForEndAsync(turn, cancellationToken);
        if (result is { Turn.Status: TurnStatus.Completed, AssistantMessage: { } answer })
        {
            return new AgentAnswer(target.Id, target.Title, turn.Id, answer.Content);
        }

        var failure = result?.Turn.Failure;
        throw new McpException($"The agent could not answer ({failure?.Code ?? "failed"}): {failure?.Detail ?? "the turn failed."}");
    }

    private async Task<ConversationRecord> FindOrStartAsync(Guid userId, string name, CancellationToken cancellationToken)
    {
        if (Guid.TryParse(name, out var id))
        {
            return await conversations.FindAsync(userId, id, cancellationToken) ?? throw new McpException("No such conversation.");
        }

        var all = await conversations.AllAsync(userId, cancellationToken);
        if (all.FirstOrDefault(c => string.Equals(c.Title, name, StringComparison.OrdinalIgnoreCase)) is { } titled)
        {
            return titled;
        }

        var externalId = await agents.CreateConversationAsync(userId, null, cancellationToken);
        var now = time.GetUtcNow();
        var created = new ConversationRecord
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            Title = name,
            TitleSource = TitleSources.User,
            ExternalId = externalId,
            CreatedAt = new DateTimeOffset(now.UtcTicks - (now.UtcTicks % 10), TimeSpan.Zero),
        };
        await conversations.InsertAsync(created, cancellationToken);
        return created;
    }

    private async Task<CoreBlock> EditAsync(
        RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context,
        string label,
        Func<AgentRecord, MemoryChangeSource, Task<BlockEdit>> edit,
        CancellationToken cancellationToken)
    {
        var user = UserOf(context);
        var keyId = user.ApiKeyId() ?? throw new McpException("Memory is edited through MCP with a personal API key.");
        var agent = await agents.GetAsync(user.UserId(), cancellationToken);
        try
        {
            var edited = await edit(agent, MemoryChangeSource.Mcp(keyId));
            if (edited.Refusal is { } refusal)
            {
                throw new McpException(refusal);
            }
        }
        catch (UnknownBlockException unknown)
        {
            throw new McpException(unknown.Message);
        }
        catch (MemoryLimitExceededException limit)
        {
            throw new McpException($"{limit.Message} Nothing was changed.");
        }

        var block = (await agents.RuntimeFor(agent).GetBlocksAsync(agent, cancellationToken)).First(b => b.Label == label);
        return new CoreBlock(block.Label, block.Value, block.Value.Length, block.Limit);
    }

    private static int CheckSearch(string query, int? limit)
    {
        if (string.IsNullOrWhiteSpace(query) || query.Length > SearchApi.MaxQueryChars)
        {
            throw new McpException($"The query has 1 to {SearchApi.MaxQueryChars} characters.");
        }

        return limit is null ? 10 : limit is >= 1 and <= 50 ? limit.Value : throw new McpException("The limit is between 1 and 50.");
    }

    private static ClaimsPrincipal UserOf(RequestContext<ModelContextProtocol.Protocol.CallToolRequestParams> context) =>
        context.User is { Identity.IsAuthenticated: true } user ? user : throw new McpException("Not signed in.");
}

public sealed record CoreBlock(string Label, string Value, int Chars, int Limit);

public sealed record Passage(string Id, string Content, DateTimeOffset CreatedAt);

public sealed record ConversationHit(Guid ConversationId, string? ConversationTitle, Guid MessageId, string Role, string Content, DateTimeOffset CreatedAt);

public sealed record ConversationItem(Guid Id, string? Title, bool IsDefault, int MessageCount, DateTimeOffset? LastMessageAt);

public sealed record AgentAnswer(Guid ConversationId, string? ConversationTitle, Guid TurnId, string Answer);
