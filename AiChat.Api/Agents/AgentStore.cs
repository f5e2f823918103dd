using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Agents;

/// <summary>The built-in agent's conversation state: the running summary and where the remembered conversation starts.</summary>
public sealed record ConversationState(string? Summary, long SummaryThroughSeq, long ConversationResetSeq);

/// <summary>The agents row (one per user) and its lease, on SQLite or Postgres; the memory lives in <see cref="MemoryStore"/>.</summary>
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

    public async Task<ConversationState> GetConversationAsync(Guid agentId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleAsync<ConversationState>(new CommandDefinition(
            "SELECT summary, summary_through_seq AS SummaryThroughSeq, conversation_reset_seq AS ConversationResetSeq FROM agents WHERE id = @agentId",
            new { agentId }, cancellationToken: cancellationToken));
    }

    public async Task SaveSummaryAsync(Guid agentId, string summary, long throughSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET summary = @summary, summary_through_seq = @throughSeq WHERE id = @agentId AND summary_through_seq <= @throughSeq",
            new { agentId, summary, throughSeq }, cancellationToken: cancellationToken));
    }

    /// <summary>The agent forgets the conversation so far: its summary, and every message up to <paramref name="lastSeq"/>.</summary>
    public async Task ForgetConversationAsync(Guid agentId, long lastSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET summary = NULL, summary_through_seq = @lastSeq, conversation_reset_seq = @lastSeq WHERE id = @agentId",
            new { agentId, lastSeq }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Takes the user's agent for one turn if no other turn holds it (or the holder's lease ran out, e.g. after a crash),
    /// and reads back what the turn starts from — the agent, its conversation state and its core blocks — in one round
    /// trip. The conditional UPDATE makes it hold across API instances sharing the database. Null when another turn holds
    /// the agent, or the user has no agent.
    /// </summary>
    public async Task<AgentRecord?> TryLeaseAsync(Guid userId, Guid turnId, DateTimeOffset now, DateTimeOffset until, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var blocks = string.Format(System.Globalization.CultureInfo.InvariantCulture, MemoryStore.BlocksQuery,
            "(SELECT id FROM agents WHERE user_id = @userId AND lease_turn_id = @turnId)");
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            UPDATE agents SET lease_turn_id = @turnId, lease_until = @until
            WHERE user_id = @userId AND (lease_turn_id IS NULL OR lease_turn_id = @turnId OR lease_until < @now)
            RETURNING {AgentColumns}, summary, summary_through_seq AS SummaryThroughSeq, conversation_reset_seq AS ConversationResetSeq;
            {blocks};
            """,
            new { userId, turnId, now, until }, cancellationToken: cancellationToken));
        var row = await results.ReadSingleOrDefaultAsync<LeasedRow>();
        var memory = MemoryStore.ToBlocks(await results.ReadAsync<MemoryStore.BlockRow>());
        return row is null ? null : new AgentRecord(row.Id, row.UserId, row.Runtime, row.ExternalId, row.Status, row.Model, row.CreatedAt, row.LastActiveAt)
        {
            Conversation = new ConversationState(row.Summary, row.SummaryThroughSeq, row.ConversationResetSeq),
            Blocks = memory,
        };
    }

    public async Task<bool> RenewLeaseAsync(Guid agentId, Guid turnId, DateTimeOffset until, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET lease_until = @until WHERE id = @agentId AND lease_turn_id = @turnId",
            new { agentId, turnId, until }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task ReleaseLeaseAsync(Guid agentId, Guid turnId, DateTimeOffset now)
    {
        await using var connection = await db.OpenAsync();
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET lease_turn_id = NULL, lease_until = NULL, last_active_at = @now WHERE id = @agentId AND lease_turn_id = @turnId",
            new { agentId, turnId, now }));
    }

    public async Task<(Guid? TurnId, DateTimeOffset? Until)> GetLeaseAsync(Guid agentId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleAsync<LeaseRow>(new CommandDefinition(
            "SELECT lease_turn_id AS TurnId, lease_until AS Until FROM agents WHERE id = @agentId", new { agentId }, cancellationToken: cancellationToken));
        return (row.TurnId, row.Until);
    }

    private sealed record LeaseRow(Guid? TurnId, DateTimeOffset? Until);

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    private sealed class LeasedRow
    {
        public Guid Id { get; set; }

        public Guid UserId { get; set; }

        public string Runtime { get; set; } = "";

        public string? ExternalId { get; set; }

        public string Status { get; set; } = "";

        public string? Model { get; set; }

        public DateTimeOffset CreatedAt { get; set; }

        public DateTimeOffset? LastActiveAt { get; set; }

        public string? Summary { get; set; }

        public long SummaryThroughSeq { get; set; }

        public long ConversationResetSeq { get; set; }
    }
}
