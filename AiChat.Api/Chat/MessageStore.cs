using AiChat.Api.Agents;
using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Chat;

public sealed record MessageRecord
{
    public long Seq { get; init; }

    public Guid Id { get; init; }

    public Guid? TurnId { get; init; }

    public string Role { get; init; } = "";

    public string Content { get; init; } = "";

    public string Status { get; init; } = "";

    public int? PromptTokens { get; init; }

    public int? CompletionTokens { get; init; }

    public long? CostNanousd { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>
/// The transcript, which Chat owns: the messages table on SQLite or Postgres, paged for the history, and read by the
/// agents through <see cref="ITranscript"/> (recent messages for the context, counts, search).
/// </summary>
public sealed class MessageStore(AiChatDb db) : ITranscript
{
    internal const string Columns =
        """
        seq, id, turn_id AS TurnId, role, content, status, prompt_tokens AS PromptTokens, completion_tokens AS CompletionTokens,
        cost_nanousd AS CostNanousd, created_at AS CreatedAt
        """;

    /// <summary>The user's messages newest first, strictly older than <paramref name="beforeSeq"/> (keyset: stable as new ones arrive).</summary>
    public async Task<IReadOnlyList<MessageRecord>> HistoryAsync(Guid userId, long beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<MessageRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM messages WHERE user_id = @userId AND seq < @beforeSeq ORDER BY seq DESC LIMIT @limit",
            new { userId, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<IReadOnlyList<TranscriptMessage>> RecentAsync(Guid userId, Guid currentTurnId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken)
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

    public async Task<int> CountAsync(Guid userId, long afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM messages WHERE user_id = @userId AND seq > @afterSeq", new { userId, afterSeq }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<TranscriptMessage>> SearchAsync(Guid userId, string query, int limit, CancellationToken cancellationToken)
    {
        var terms = FullText.Terms(query);
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
        var (tsquery, match) = FullText.Query(terms);
        var rows = await connection.QueryAsync<TranscriptMessage>(new CommandDefinition(sql, new { userId, limit, tsquery, match }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<long> LastSeqAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(seq) FROM messages WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken)) ?? 0;
    }
}
