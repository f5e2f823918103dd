using System.Data.Common;
using System.Text.RegularExpressions;
using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Agents;

/// <summary>A stored transcript message as the agent sees it.</summary>
public sealed record TranscriptMessage(long Seq, Guid Id, string Role, string Content, DateTimeOffset CreatedAt);

/// <summary>The built-in agent's conversation state: the running summary and where the remembered conversation starts.</summary>
public sealed record ConversationState(string? Summary, long SummaryThroughSeq, long ConversationResetSeq);

/// <summary>Agents, their memory blocks and archival passages, and the transcript they read, on SQLite or Postgres.</summary>
public sealed partial class AgentStore(AiChatDb db)
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
        await InsertBlocksAsync(connection, transaction, agent.Id, blocks, cancellationToken);
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

    public async Task TouchAsync(Guid agentId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET last_active_at = @now WHERE id = @agentId", new { agentId, now }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(Guid agentId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await GetBlocksAsync(connection, null, agentId, cancellationToken);
    }

    /// <summary>Checks every update against the stored blocks, then applies all of them in one transaction, or none.</summary>
    public async Task<IReadOnlyList<MemoryBlock>> UpdateBlocksAsync(Guid agentId, IReadOnlyList<BlockUpdate> updates, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var blocks = (await GetBlocksAsync(connection, transaction, agentId, cancellationToken)).ToDictionary(b => b.Label, StringComparer.Ordinal);
        foreach (var update in updates)
        {
            if (!blocks.TryGetValue(update.Label, out var block))
            {
                throw new UnknownBlockException(update.Label);
            }

            if (update.Value.Length > block.Limit)
            {
                throw new MemoryLimitExceededException(update.Label, block.Limit, update.Value.Length);
            }
        }

        foreach (var update in updates)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE memory_blocks SET value = @Value, updated_at = @now WHERE agent_id = @agentId AND label = @Label",
                new { agentId, update.Label, update.Value, now }, transaction, cancellationToken: cancellationToken));
        }

        var result = await GetBlocksAsync(connection, transaction, agentId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    /// <summary>Replaces every block with the given ones (memory reset).</summary>
    public async Task ReplaceBlocksAsync(Guid agentId, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM memory_blocks WHERE agent_id = @agentId", new { agentId }, transaction, cancellationToken: cancellationToken));
        await InsertBlocksAsync(connection, transaction, agentId, blocks, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<ArchivalPassage> InsertPassageAsync(Guid agentId, string content, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid();
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO archival_passages (id, agent_id, content, created_at) VALUES (@id, @agentId, @content, @now)",
            new { id, agentId, content, now }, cancellationToken: cancellationToken));
        return new ArchivalPassage(id.ToString(), content, [], now);
    }

    /// <summary>Newest first; with a query, ranked full-text matches (FTS5 bm25 on SQLite, ts_rank on Postgres).</summary>
    public async Task<IReadOnlyList<ArchivalPassage>> ListPassagesAsync(Guid agentId, string? query, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var terms = SearchTerms(query);
        if (query is not null && terms.Count == 0)
        {
            return [];
        }

        var sql = terms.Count == 0
            ? "SELECT id, content, created_at AS CreatedAt FROM archival_passages WHERE agent_id = @agentId ORDER BY created_at DESC, id DESC LIMIT @limit"
            : db.Provider == StoreProvider.Postgres
                ? """
                  SELECT id, content, created_at AS CreatedAt FROM archival_passages
                  WHERE agent_id = @agentId AND search @@ to_tsquery('english', @tsquery)
                  ORDER BY ts_rank(search, to_tsquery('english', @tsquery)) DESC, created_at DESC LIMIT @limit
                  """
                : """
                  SELECT p.id, p.content, p.created_at AS CreatedAt FROM archival_passages_fts f
                  JOIN archival_passages p ON p.rowid = f.rowid
                  WHERE archival_passages_fts MATCH @match AND p.agent_id = @agentId
                  ORDER BY f.rank, p.created_at DESC LIMIT @limit
                  """;
        var (tsquery, match) = FullTextQuery(terms);
        var rows = await connection.QueryAsync<PassageRow>(new CommandDefinition(sql, new { agentId, limit, tsquery, match }, cancellationToken: cancellationToken));
        return rows.Select(r => new ArchivalPassage(r.Id.ToString(), r.Content, [], r.CreatedAt)).ToList();
    }

    public async Task<int> CountPassagesAsync(Guid agentId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM archival_passages WHERE agent_id = @agentId", new { agentId }, cancellationToken: cancellationToken));
    }

    public async Task<bool> DeletePassageAsync(Guid agentId, Guid passageId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM archival_passages WHERE id = @passageId AND agent_id = @agentId", new { agentId, passageId }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task DeleteAllPassagesAsync(Guid agentId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM archival_passages WHERE agent_id = @agentId", new { agentId }, cancellationToken: cancellationToken));
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

    /// <summary>The agent forgets the conversation so far: its summary, and every message up to now.</summary>
    public async Task ForgetConversationAsync(Guid agentId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var last = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(seq) FROM messages WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken)) ?? 0;
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE agents SET summary = NULL, summary_through_seq = @last, conversation_reset_seq = @last WHERE id = @agentId",
            new { agentId, last }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// A page of the remembered transcript, newest first, strictly older than <paramref name="beforeSeq"/>;
    /// the messages of the running turn are left out (the runtime adds the user's new message itself).
    /// </summary>
    public async Task<IReadOnlyList<TranscriptMessage>> RecentMessagesAsync(Guid userId, Guid currentTurnId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<TranscriptMessage>(new CommandDefinition(
            """
            SELECT seq, id, role, content, created_at AS CreatedAt FROM messages
            WHERE user_id = @userId AND seq > @afterSeq AND seq < @beforeSeq AND role IN ('user', 'assistant') AND content <> ''
              AND (turn_id IS NULL OR turn_id <> @currentTurnId)
            ORDER BY seq DESC LIMIT @limit
            """,
            new { userId, currentTurnId, afterSeq, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<int> CountMessagesAsync(Guid userId, long afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM messages WHERE user_id = @userId AND seq > @afterSeq", new { userId, afterSeq }, cancellationToken: cancellationToken));
    }

    /// <summary>Full-text search over the user's whole transcript (the conversation_search tool), best matches first.</summary>
    public async Task<IReadOnlyList<TranscriptMessage>> SearchMessagesAsync(Guid userId, string query, int limit, CancellationToken cancellationToken)
    {
        var terms = SearchTerms(query);
        if (terms.Count == 0)
        {
            return [];
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        var sql = db.Provider == StoreProvider.Postgres
            ? """
              SELECT seq, id, role, content, created_at AS CreatedAt FROM messages
              WHERE user_id = @userId AND search @@ to_tsquery('english', @tsquery)
              ORDER BY ts_rank(search, to_tsquery('english', @tsquery)) DESC, seq DESC LIMIT @limit
              """
            : """
              SELECT m.seq, m.id, m.role, m.content, m.created_at AS CreatedAt FROM messages_fts f
              JOIN messages m ON m.seq = f.rowid
              WHERE messages_fts MATCH @match AND m.user_id = @userId
              ORDER BY f.rank, m.seq DESC LIMIT @limit
              """;
        var (tsquery, match) = FullTextQuery(terms);
        var rows = await connection.QueryAsync<TranscriptMessage>(new CommandDefinition(sql, new { userId, limit, tsquery, match }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>
    /// Takes the agent for one turn if no other turn holds it (or the holder's lease ran out, e.g. after a crash).
    /// One conditional UPDATE, so it holds across API instances sharing the database.
    /// </summary>
    public async Task<bool> TryLeaseAsync(Guid agentId, Guid turnId, DateTimeOffset now, DateTimeOffset until, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE agents SET lease_turn_id = @turnId, lease_until = @until
            WHERE id = @agentId AND (lease_turn_id IS NULL OR lease_turn_id = @turnId OR lease_until < @now)
            """,
            new { agentId, turnId, now, until }, cancellationToken: cancellationToken)) == 1;
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

    /// <summary>Words of a search, lower-cased and stripped of anything a full-text query language could read as syntax.</summary>
    public static IReadOnlyList<string> SearchTerms(string? query) =>
        query is null ? [] : WordPattern().Matches(query).Select(m => m.Value.ToLowerInvariant()).Where(w => w.Length > 1).Distinct().Take(16).ToList();

    // Any of the words matches: a Postgres tsquery (stemmed by to_tsquery) and an FTS5 MATCH of quoted terms.
    private static (string TsQuery, string Match) FullTextQuery(IReadOnlyList<string> terms) =>
        (string.Join(" | ", terms), string.Join(" OR ", terms.Select(t => $"\"{t}\"")));

    private static async Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(DbConnection connection, DbTransaction? transaction, Guid agentId, CancellationToken cancellationToken)
    {
        var rows = await connection.QueryAsync<BlockRow>(new CommandDefinition(
            "SELECT label, value, char_limit AS CharLimit, description, updated_at AS UpdatedAt FROM memory_blocks WHERE agent_id = @agentId ORDER BY label",
            new { agentId }, transaction, cancellationToken: cancellationToken));
        return rows.Select(r => new MemoryBlock(r.Label, r.Value, r.CharLimit, r.Description, r.UpdatedAt)).ToList();
    }

    private static async Task InsertBlocksAsync(DbConnection connection, DbTransaction transaction, Guid agentId, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        foreach (var block in blocks)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, description, updated_at) VALUES (@agentId, @Label, @Value, @Limit, @Description, @UpdatedAt)",
                new { agentId, block.Label, block.Value, block.Limit, block.Description, block.UpdatedAt }, transaction, cancellationToken: cancellationToken));
        }
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+", RegexOptions.CultureInvariant)]
    private static partial Regex WordPattern();

    private sealed record PassageRow(Guid Id, string Content, DateTimeOffset CreatedAt);

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    private sealed class BlockRow
    {
        public string Label { get; set; } = "";

        public string Value { get; set; } = "";

        public int CharLimit { get; set; }

        public string? Description { get; set; }

        public DateTimeOffset UpdatedAt { get; set; }
    }

    private sealed record LeaseRow(Guid? TurnId, DateTimeOffset? Until);
}
