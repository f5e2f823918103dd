using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Agents;

/// <summary>
/// A conversation as the agent sees it: which one, its model (null: the catalogue's default), the runtime's own id for it
/// (a Letta conversation; null for the default one and on the built-in runtime), the running summary and where the
/// remembered part of its transcript starts.
/// </summary>
/// <summary>
/// The agent's state in one conversation. <paramref name="MessageCount"/> is how many current messages the agent has not
/// forgotten (the conversation's count, less those a reset forgot): kept with every write, so the status never counts rows.
/// </summary>
public sealed record ConversationState(Guid Id, bool IsDefault, string? Model, string? ExternalId, string? Summary, long SummaryThroughSeq, long ResetSeq, long MessageCount = 0);

/// <summary>
/// The agents row (one per user), and the agent's state in each conversation — its running summary, and the lease a reset
/// holds it with (a turn holds it by being stored as running) — on SQLite or Postgres; the memory lives in <see cref="MemoryStore"/>.
/// </summary>
public sealed class AgentStore(AiChatDb db)
{
    private const string AgentColumns =
        "id, user_id AS UserId, runtime, external_id AS ExternalId, status, model, created_at AS CreatedAt, last_active_at AS LastActiveAt";

    public async Task InsertAsync(AgentRecord agent, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO agents (id, user_id, runtime, external_id, status, model, created_at) VALUES (@Id, @UserId, @Runtime, @ExternalId, @Status, @Model, @CreatedAt)",
            agent, transaction, cancellationToken: cancellationToken));
        await MemoryStore.InsertBlocksAsync(connection, transaction, agent.Id, blocks, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<AgentRecord?> FindByUserAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<AgentRecord>(new CommandDefinition(
            $"SELECT {AgentColumns} FROM agents WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
    }

    public async Task SetExternalIdAsync(Guid agentId, string? externalId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET external_id = @externalId WHERE id = @agentId", new { agentId, externalId }, cancellationToken: cancellationToken));
    }

    public async Task DeleteByUserAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM agents WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
    }

    /// <summary>The agent's state in a conversation (null: the user's default one); null when there is no such conversation.</summary>
    public async Task<ConversationState?> GetConversationAsync(Guid userId, Guid? conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ConversationRow>(new CommandDefinition(
            $"SELECT {ConversationColumns} FROM conversations WHERE user_id = @userId AND {Which(conversationId)}",
            new { userId, conversationId }, cancellationToken: cancellationToken));
        return row?.ToState();
    }

    public async Task SaveSummaryAsync(Guid conversationId, string summary, long throughSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE conversations SET summary = @summary, summary_through_seq = @throughSeq WHERE id = @conversationId AND summary_through_seq <= @throughSeq",
            new { conversationId, summary, throughSeq }, cancellationToken: cancellationToken));
    }

    /// <summary>The agent forgets the conversation so far: its summary, and every message up to <paramref name="lastSeq"/>.</summary>
    public async Task ForgetConversationAsync(Guid conversationId, long lastSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE conversations SET summary = NULL, summary_through_seq = @lastSeq, reset_seq = @lastSeq, forgotten_count = message_count WHERE id = @conversationId",
            new { conversationId, lastSeq }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// What a turn starts from — the agent, its state in the conversation (null: the user's default one) and its core
    /// blocks — in one round trip, reading only: the stored running turn is what holds the conversation. Null when there
    /// is no such conversation or agent.
    /// </summary>
    public async Task<AgentRecord?> ReadForTurnAsync(Guid userId, Guid? conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            SELECT {ConversationColumns} FROM conversations WHERE user_id = @userId AND {Which(conversationId)};
            {AgentAndBlocks}
            """,
            new { userId, conversationId }, cancellationToken: cancellationToken));
        return (await ReadAgentAsync(results)).Agent;
    }

    /// <summary>
    /// Holds the user's default conversation for an operation that must not overlap a turn there (a reset): takes its
    /// lease when no turn runs in it and no other holder's lease is current, and reads the agent as
    /// <see cref="ReadForTurnAsync"/> does, in one round trip. No turn is stored while the lease is current (<c>TurnStore</c>),
    /// so the conditional UPDATE excludes turns and other resets across API instances sharing the database; on Postgres
    /// the agents row is locked first, as storing a turn does, so a turn and a reset cannot both pass their checks.
    /// Null when the conversation is held, or there is no such conversation or agent.
    /// </summary>
    public async Task<AgentRecord?> TryHoldDefaultAsync(Guid userId, Guid holder, DateTimeOffset now, DateTimeOffset until, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            {(db.Provider == StoreProvider.Postgres ? "SELECT id FROM agents WHERE user_id = @userId FOR UPDATE;" : "")}
            UPDATE conversations SET lease_turn_id = @holder, lease_until = @until
            WHERE user_id = @userId AND is_default AND (lease_turn_id IS NULL OR lease_turn_id = @holder OR lease_until < @now)
              AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = conversations.id AND t.status = 'running')
            RETURNING {ConversationColumns};
            {AgentAndBlocks}
            """,
            new { userId, holder, now, until }, cancellationToken: cancellationToken));
        if (db.Provider == StoreProvider.Postgres)
        {
            await results.ReadAsync<Guid>();
        }

        var (conversation, agent) = await ReadAgentAsync(results);
        if (conversation is not null && agent is null)
        {
            await ReleaseHoldAsync(conversation.Id, holder); // a conversation without an agent: nothing to run
        }

        return agent;
    }

    public async Task<bool> RenewHoldAsync(Guid conversationId, Guid holder, DateTimeOffset until, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE conversations SET lease_until = @until WHERE id = @conversationId AND lease_turn_id = @holder",
            new { conversationId, holder, until }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task ReleaseHoldAsync(Guid conversationId, Guid holder)
    {
        await using var connection = await db.OpenAsync();
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE conversations SET lease_turn_id = NULL, lease_until = NULL WHERE id = @conversationId AND lease_turn_id = @holder",
            new { conversationId, holder }));
    }

    /// <summary>How many of the user's conversations a running turn or a reset holds right now.</summary>
    public async Task<int> CountHeldAsync(Guid userId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            """
            SELECT (SELECT COUNT(*) FROM turns WHERE user_id = @userId AND status = 'running')
                 + (SELECT COUNT(*) FROM conversations WHERE user_id = @userId AND lease_turn_id IS NOT NULL AND lease_until > @now)
            """,
            new { userId, now }, cancellationToken: cancellationToken));
    }

    // The agent and its blocks, after a statement giving the conversation's row: what a turn (or a reset) starts from.
    private static readonly string AgentAndBlocks =
        $"""
        SELECT {AgentColumns} FROM agents WHERE user_id = @userId;
        {string.Format(System.Globalization.CultureInfo.InvariantCulture, MemoryStore.BlocksQuery, "(SELECT id FROM agents WHERE user_id = @userId)")};
        """;

    /// <summary>The conversation's row, then the agent with its state there and its blocks (null without either).</summary>
    private static async Task<(ConversationRow? Conversation, AgentRecord? Agent)> ReadAgentAsync(SqlMapper.GridReader results)
    {
        var conversation = await results.ReadSingleOrDefaultAsync<ConversationRow>();
        var agent = await results.ReadSingleOrDefaultAsync<AgentRecord>();
        var memory = MemoryStore.ToBlocks(await results.ReadAsync<MemoryStore.BlockRow>());
        return (conversation, conversation is null || agent is null ? null : agent with { Conversation = conversation.ToState(), Blocks = memory });
    }

    private const string ConversationColumns =
        "id, is_default AS IsDefault, model, external_id AS ExternalId, summary, summary_through_seq AS SummaryThroughSeq, reset_seq AS ResetSeq, "
        + "message_count - forgotten_count AS MessageCount";

    // The default conversation when none is named; is_default alone is a condition on both stores (integer or boolean).
    private static string Which(Guid? conversationId) => conversationId is null ? "is_default" : "id = @conversationId";

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    private sealed class ConversationRow
    {
        public Guid Id { get; set; }

        public bool IsDefault { get; set; }

        public string? Model { get; set; }

        public string? ExternalId { get; set; }

        public string? Summary { get; set; }

        public long SummaryThroughSeq { get; set; }

        public long ResetSeq { get; set; }

        public long MessageCount { get; set; }

        public ConversationState ToState() => new(Id, IsDefault, Model, ExternalId, Summary, SummaryThroughSeq, ResetSeq, MessageCount);
    }
}
