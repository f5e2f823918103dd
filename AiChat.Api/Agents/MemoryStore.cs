using System.Data.Common;
using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Agents;

/// <summary>An agent's memory on SQLite or Postgres: its core blocks (with their limits) and its archival passages.</summary>
public sealed class MemoryStore(AiChatDb db)
{
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
        var terms = FullText.Terms(query);
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
        var (tsquery, match) = FullText.Query(terms);
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

    /// <summary>The agent's blocks, by label; <paramref name="agentId"/> may be a subquery's value (see <see cref="AgentStore.TryLeaseAsync"/>).</summary>
    internal const string BlocksQuery =
        "SELECT label, value, char_limit AS CharLimit, description, updated_at AS UpdatedAt FROM memory_blocks WHERE agent_id = {0} ORDER BY label";

    internal static IReadOnlyList<MemoryBlock> ToBlocks(IEnumerable<BlockRow> rows) =>
        rows.Select(r => new MemoryBlock(r.Label, r.Value, r.CharLimit, r.Description, r.UpdatedAt)).ToList();

    private static async Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(DbConnection connection, DbTransaction? transaction, Guid agentId, CancellationToken cancellationToken) =>
        ToBlocks(await connection.QueryAsync<BlockRow>(new CommandDefinition(
            string.Format(System.Globalization.CultureInfo.InvariantCulture, BlocksQuery, "@agentId"), new { agentId }, transaction, cancellationToken: cancellationToken)));

    internal static async Task InsertBlocksAsync(DbConnection connection, DbTransaction transaction, Guid agentId, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        foreach (var block in blocks)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, description, updated_at) VALUES (@agentId, @Label, @Value, @Limit, @Description, @UpdatedAt)",
                new { agentId, block.Label, block.Value, block.Limit, block.Description, block.UpdatedAt }, transaction, cancellationToken: cancellationToken));
        }
    }

    private sealed record PassageRow(Guid Id, string Content, DateTimeOffset CreatedAt);

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    internal sealed class BlockRow
    {
        public string Label { get; set; } = "";

        public string Value { get; set; } = "";

        public int CharLimit { get; set; }

        public string? Description { get; set; }

        public DateTimeOffset UpdatedAt { get; set; }
    }
}
