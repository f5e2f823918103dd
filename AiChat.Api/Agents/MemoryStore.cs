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

    /// <summary>
    /// Checks every update against the stored blocks, then applies all of them in one transaction, or none, recording
    /// each change of a value in the change log in the same transaction. The transaction holds the blocks from its first
    /// read (see <see cref="EditBlockAsync"/>), so a concurrent edit cannot slip in between the check and the write.
    /// </summary>
    public async Task<IReadOnlyList<MemoryBlock>> UpdateBlocksAsync(Guid agentId, IReadOnlyList<BlockUpdate> updates, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var blocks = (await GetBlocksAsync(connection, transaction, agentId, cancellationToken, forUpdate: true)).ToDictionary(b => b.Label, StringComparer.Ordinal);
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
            await WriteAsync(connection, transaction, agentId, update.Label, blocks[update.Label].Value, update.Value, update.Source ?? MemoryChangeSource.User, now, cancellationToken);
        }

        var result = await GetBlocksAsync(connection, transaction, agentId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    /// <summary>
    /// Edits one block against its current value, atomically on both stores and across instances: the transaction holds
    /// the block from its read to its write (a row lock on Postgres; on SQLite the transaction begins IMMEDIATE, taking
    /// the database's write lock), so concurrent edits apply one after another and none is lost. The limit is checked
    /// on the edited value as <see cref="UpdateBlocksAsync"/> checks it (UTF-16 units); a value over it, or a refused
    /// edit, changes nothing. The change is recorded with the write, in one command.
    /// </summary>
    public async Task<BlockEdit> EditBlockAsync(Guid agentId, string label, Func<string, BlockEdit> edit, MemoryChangeSource source, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var block = await connection.QuerySingleOrDefaultAsync<BlockRow>(new CommandDefinition(
            $"SELECT label, value, char_limit AS CharLimit, description, updated_at AS UpdatedAt FROM memory_blocks WHERE agent_id = @agentId AND label = @label{ForUpdate}",
            new { agentId, label }, transaction, cancellationToken: cancellationToken))
            ?? throw new UnknownBlockException(label);
        var edited = edit(block.Value);
        if (edited.Value is not { } value)
        {
            return edited;
        }

        if (value.Length > block.CharLimit)
        {
            throw new MemoryLimitExceededException(label, block.CharLimit, value.Length);
        }

        await WriteAsync(connection, transaction, agentId, label, block.Value, value, source, now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return edited;
    }

    /// <summary>Appends a line to a block (see <see cref="EditBlockAsync"/>): its value, trimmed at the end, a newline, the text trimmed.</summary>
    public Task<BlockEdit> AppendAsync(Guid agentId, string label, string text, MemoryChangeSource source, DateTimeOffset now, CancellationToken cancellationToken) =>
        EditBlockAsync(agentId, label, BlockEdit.Appending(text), source, now, cancellationToken);

    /// <summary>
    /// Replaces every block with the given ones (memory reset), recording each block whose value changes as a change by
    /// the user, so a reset shows in the review and each block of it can be reverted.
    /// </summary>
    public async Task ReplaceBlocksAsync(Guid agentId, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var before = (await GetBlocksAsync(connection, transaction, agentId, cancellationToken, forUpdate: true)).ToDictionary(b => b.Label, b => b.Value, StringComparer.Ordinal);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM memory_blocks WHERE agent_id = @agentId", new { agentId }, transaction, cancellationToken: cancellationToken));
        await InsertBlocksAsync(connection, transaction, agentId, blocks, cancellationToken);
        foreach (var block in blocks)
        {
            var old = before.GetValueOrDefault(block.Label, "");
            if (old != block.Value)
            {
                await InsertChangeAsync(connection, transaction, agentId, block.Label, old, block.Value, MemoryChangeSource.User, block.UpdatedAt, cancellationToken);
            }
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Records changes made elsewhere (Letta's blocks, written through its API before this is called).</summary>
    public async Task RecordChangesAsync(Guid agentId, IReadOnlyList<(string Label, string OldValue, string NewValue, MemoryChangeSource Source)> changes, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var real = changes.Where(c => c.OldValue != c.NewValue).ToList();
        if (real.Count == 0)
        {
            return;
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var (label, oldValue, newValue, source) in real)
        {
            await InsertChangeAsync(connection, transaction, agentId, label, oldValue, newValue, source, now, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The change log, newest first: at most <paramref name="limit"/> changes older than <paramref name="beforeSeq"/>, of one label if given.</summary>
    public async Task<IReadOnlyList<MemoryChange>> ListChangesAsync(Guid agentId, string? label, long? beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ChangeRow>(new CommandDefinition(
            $"""
            {ChangesSelect} WHERE agent_id = @agentId
            {(label is null ? "" : "AND label = @label")} {(beforeSeq is null ? "" : "AND seq < @beforeSeq")}
            ORDER BY seq DESC LIMIT @limit
            """,
            new { agentId, label, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.Select(r => r.ToChange()).ToList();
    }

    /// <summary>One change of this agent's log; null when there is none with that id (or it is another agent's).</summary>
    public async Task<MemoryChange?> FindChangeAsync(Guid agentId, Guid changeId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ChangeRow>(new CommandDefinition(
            $"{ChangesSelect} WHERE agent_id = @agentId AND id = @changeId", new { agentId, changeId }, cancellationToken: cancellationToken));
        return row?.ToChange();
    }

    public Task<ArchivalPassage> InsertPassageAsync(Guid agentId, string content, DateTimeOffset now, CancellationToken cancellationToken) =>
        InsertPassageAsync(agentId, content, null, null, now, cancellationToken);

    /// <summary>Saves a passage; <paramref name="turnId"/> and <paramref name="conversationId"/> say which turn's tool saved it (null through the API).</summary>
    public async Task<ArchivalPassage> InsertPassageAsync(Guid agentId, string content, Guid? turnId, Guid? conversationId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid();
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO archival_passages (id, agent_id, content, created_at, turn_id, conversation_id) VALUES (@id, @agentId, @content, @now, @turnId, @conversationId)",
            new { id, agentId, content, now, turnId, conversationId }, cancellationToken: cancellationToken));
        return new ArchivalPassage(id.ToString(), content, [], now) { TurnId = turnId, ConversationId = conversationId };
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
            ? "SELECT id, content, created_at AS CreatedAt, turn_id AS TurnId, conversation_id AS ConversationId FROM archival_passages WHERE agent_id = @agentId ORDER BY created_at DESC, id DESC LIMIT @limit"
            : db.Provider == StoreProvider.Postgres
                ? """
                  SELECT id, content, created_at AS CreatedAt, turn_id AS TurnId, conversation_id AS ConversationId FROM archival_passages
                  WHERE agent_id = @agentId AND search @@ to_tsquery('english', @tsquery)
                  ORDER BY ts_rank(search, to_tsquery('english', @tsquery)) DESC, created_at DESC LIMIT @limit
                  """
                : """
                  SELECT p.id, p.content, p.created_at AS CreatedAt, p.turn_id AS TurnId, p.conversation_id AS ConversationId FROM archival_passages_fts f
                  JOIN archival_passages p ON p.rowid = f.rowid
                  WHERE archival_passages_fts MATCH @match AND p.agent_id = @agentId
                  ORDER BY f.rank, p.created_at DESC LIMIT @limit
                  """;
        var (tsquery, match) = FullText.Query(terms);
        var rows = await connection.QueryAsync<PassageRow>(new CommandDefinition(sql, new { agentId, limit, tsquery, match }, cancellationToken: cancellationToken));
        return rows.Select(r => new ArchivalPassage(r.Id.ToString(), r.Content, [], r.CreatedAt) { TurnId = r.TurnId, ConversationId = r.ConversationId }).ToList();
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

    /// <summary>The agent's blocks, by label; <paramref name="agentId"/> may be a subquery's value (see <see cref="AgentStore.ReadForTurnAsync"/>).</summary>
    internal const string BlocksQuery =
        "SELECT label, value, char_limit AS CharLimit, description, updated_at AS UpdatedAt FROM memory_blocks WHERE agent_id = {0} ORDER BY label";

    internal static IReadOnlyList<MemoryBlock> ToBlocks(IEnumerable<BlockRow> rows) =>
        rows.Select(r => new MemoryBlock(r.Label, r.Value, r.CharLimit, r.Description, r.UpdatedAt)).ToList();

    private const string ChangesSelect =
        """
        SELECT seq, id, label, old_value AS OldValue, new_value AS NewValue, source_kind AS SourceKind, turn_id AS TurnId,
               conversation_id AS ConversationId, key_id AS KeyId, reverts_change_id AS RevertsChangeId, created_at AS CreatedAt
        FROM memory_changes
        """;

    // SQLite needs no row lock: its transactions begin IMMEDIATE (Microsoft.Data.Sqlite's default), holding the write lock.
    private string ForUpdate => db.Provider == StoreProvider.Postgres ? " FOR UPDATE" : "";

    private async Task<IReadOnlyList<MemoryBlock>> GetBlocksAsync(DbConnection connection, DbTransaction? transaction, Guid agentId, CancellationToken cancellationToken, bool forUpdate = false) =>
        ToBlocks(await connection.QueryAsync<BlockRow>(new CommandDefinition(
            string.Format(System.Globalization.CultureInfo.InvariantCulture, BlocksQuery, "@agentId") + (forUpdate ? ForUpdate : ""), new { agentId }, transaction, cancellationToken: cancellationToken)));

    /// <summary>Writes a block's new value and, if it differs from the old one, its change log entry, in one command.</summary>
    private static Task WriteAsync(DbConnection connection, DbTransaction transaction, Guid agentId, string label, string oldValue, string newValue, MemoryChangeSource source, DateTimeOffset now, CancellationToken cancellationToken)
    {
        const string update = "UPDATE memory_blocks SET value = @newValue, updated_at = @now WHERE agent_id = @agentId AND label = @label";
        return connection.ExecuteAsync(new CommandDefinition(
            oldValue == newValue ? update : $"{update};\n{InsertChange}",
            ChangeParameters(agentId, label, oldValue, newValue, source, now), transaction, cancellationToken: cancellationToken));
    }

    private static Task InsertChangeAsync(DbConnection connection, DbTransaction transaction, Guid agentId, string label, string oldValue, string newValue, MemoryChangeSource source, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(InsertChange, ChangeParameters(agentId, label, oldValue, newValue, source, now), transaction, cancellationToken: cancellationToken));

    private const string InsertChange =
        """
        INSERT INTO memory_changes (id, agent_id, label, old_value, new_value, source_kind, turn_id, conversation_id, key_id, reverts_change_id, created_at)
        VALUES (@changeId, @agentId, @label, @oldValue, @newValue, @kind, @turnId, @conversationId, @keyId, @revertsChangeId, @now)
        """;

    private static object ChangeParameters(Guid agentId, string label, string oldValue, string newValue, MemoryChangeSource source, DateTimeOffset now) => new
    {
        changeId = Guid.NewGuid(),
        agentId,
        label,
        oldValue,
        newValue,
        kind = source.Kind,
        turnId = source.TurnId,
        conversationId = source.ConversationId,
        keyId = source.KeyId,
        revertsChangeId = source.RevertsChangeId,
        now,
    };

    internal static async Task InsertBlocksAsync(DbConnection connection, DbTransaction transaction, Guid agentId, IReadOnlyList<MemoryBlock> blocks, CancellationToken cancellationToken)
    {
        foreach (var block in blocks)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, description, updated_at) VALUES (@agentId, @Label, @Value, @Limit, @Description, @UpdatedAt)",
                new { agentId, block.Label, block.Value, block.Limit, block.Description, block.UpdatedAt }, transaction, cancellationToken: cancellationToken));
        }
    }

    private sealed record PassageRow(Guid Id, string Content, DateTimeOffset CreatedAt, Guid? TurnId, Guid? ConversationId);

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    private sealed class ChangeRow
    {
        public long Seq { get; set; }

        public Guid Id { get; set; }

        public string Label { get; set; } = "";

        public string OldValue { get; set; } = "";

        public string NewValue { get; set; } = "";

        public string SourceKind { get; set; } = "";

        public Guid? TurnId { get; set; }

        public Guid? ConversationId { get; set; }

        public Guid? KeyId { get; set; }

        public Guid? RevertsChangeId { get; set; }

        public DateTimeOffset CreatedAt { get; set; }

        public MemoryChange ToChange() =>
            new(Id, Seq, Label, OldValue, NewValue, new MemoryChangeSource(SourceKind, TurnId, ConversationId, KeyId, RevertsChangeId), CreatedAt);
    }

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
