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

    /// <summary>An assistant message's user message (the one it answers); null for a user message.</summary>
    public Guid? ReplyToId { get; init; }

    /// <summary>Read with the history only: for an assistant message, how many other answers its user message has.</summary>
    public int? Alternatives { get; init; }
}

/// <summary>
/// The transcripts, which Chat owns: the messages table on SQLite or Postgres, one transcript per conversation, paged for
/// the history, and read by the agents through <see cref="ITranscript"/> (recent messages for the context, counts, search).
/// An assistant message a regenerate replaced stays as an alternative, out of the history and the context.
/// </summary>
public sealed class MessageStore(AiChatDb db) : ITranscript
{
    internal const string Columns =
        """
        seq, id, turn_id AS TurnId, role, content, status, prompt_tokens AS PromptTokens, completion_tokens AS CompletionTokens,
        cost_nanousd AS CostNanousd, created_at AS CreatedAt, reply_to_id AS ReplyToId
        """;

    /// <summary>The user's default conversation, as a condition on a messages row.</summary>
    internal const string InDefaultConversation = "conversation_id = (SELECT id FROM conversations WHERE user_id = @userId AND is_default)";

    /// <summary>
    /// A conversation's current messages newest first (null: the user's default conversation), strictly older than
    /// <paramref name="beforeSeq"/> (keyset: stable as new ones arrive), each answer with its number of alternatives.
    /// Only the user's own conversation answers.
    /// </summary>
    public async Task<IReadOnlyList<MessageRecord>> HistoryAsync(Guid userId, Guid? conversationId, long beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var which = conversationId is null ? InDefaultConversation : "conversation_id = @conversationId";
        var rows = await connection.QueryAsync<MessageRecord>(new CommandDefinition(
            $"""
            SELECT {Columns}, CASE WHEN role = 'assistant'
                THEN (SELECT COUNT(*) FROM messages a WHERE a.reply_to_id = messages.reply_to_id AND a.id <> messages.id) END AS Alternatives
            FROM messages WHERE {which} AND user_id = @userId AND replaced_by_id IS NULL AND seq < @beforeSeq ORDER BY seq DESC LIMIT @limit
            """,
            new { userId, conversationId, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>One message of one of the user's conversations; null when there is none with that id there (or it is another user's).</summary>
    public async Task<MessageRecord?> FindAsync(Guid userId, Guid conversationId, Guid messageId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<MessageRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM messages WHERE id = @messageId AND conversation_id = @conversationId AND user_id = @userId",
            new { userId, conversationId, messageId }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// The answers to a user message other than <paramref name="exceptId"/>, oldest first: the alternatives of that answer
    /// (the ones a regenerate replaced, and the current one when <paramref name="exceptId"/> is a replaced one).
    /// </summary>
    public async Task<IReadOnlyList<MessageRecord>> AnswersToAsync(Guid conversationId, Guid userMessageId, Guid exceptId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<MessageRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM messages WHERE reply_to_id = @userMessageId AND conversation_id = @conversationId AND id <> @exceptId ORDER BY seq",
            new { conversationId, userMessageId, exceptId }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>Every message of one of the user's conversations, oldest first, with the answer that replaced it (the export).</summary>
    public async Task<IReadOnlyList<(MessageRecord Message, Guid? ReplacedById)>> ExportAsync(Guid userId, Guid conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            SELECT {Columns} FROM messages WHERE conversation_id = @conversationId AND user_id = @userId ORDER BY seq;
            SELECT id, replaced_by_id AS ReplacedById FROM messages WHERE conversation_id = @conversationId AND user_id = @userId AND replaced_by_id IS NOT NULL;
            """,
            new { userId, conversationId }, cancellationToken: cancellationToken));
        var messages = (await results.ReadAsync<MessageRecord>()).AsList();
        var replaced = (await results.ReadAsync<(Guid Id, Guid ReplacedById)>()).ToDictionary(r => r.Id, r => r.ReplacedById);
        return messages.Select(m => (m, replaced.TryGetValue(m.Id, out var by) ? by : (Guid?)null)).ToList();
    }

    public async Task<IReadOnlyList<TranscriptMessage>> RecentAsync(Guid conversationId, Guid currentTurnId, Guid? answeredMessageId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<TranscriptMessage>(new CommandDefinition(
            """
            SELECT seq, id, role, content, created_at AS CreatedAt FROM messages
            WHERE conversation_id = @conversationId AND seq > @afterSeq AND seq < @beforeSeq AND role IN ('user', 'assistant') AND content <> ''
              AND replaced_by_id IS NULL AND (turn_id IS NULL OR turn_id <> @currentTurnId) AND id <> @answered
            ORDER BY seq DESC LIMIT @limit
            """,
            new { conversationId, currentTurnId, answered = answeredMessageId ?? Guid.Empty, afterSeq, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<int> CountAsync(Guid conversationId, long afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return (int)await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = @conversationId AND seq > @afterSeq AND replaced_by_id IS NULL",
            new { conversationId, afterSeq }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<TranscriptHit>> SearchAsync(Guid userId, string query, int limit, CancellationToken cancellationToken)
    {
        var terms = FullText.Terms(query);
        if (terms.Count == 0)
        {
            return [];
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        var sql = db.Provider == StoreProvider.Postgres
            ? """
              SELECT m.conversation_id AS ConversationId, c.title AS ConversationTitle, m.id, m.role, m.content, m.created_at AS CreatedAt
              FROM messages m JOIN conversations c ON c.id = m.conversation_id
              WHERE m.user_id = @userId AND m.search @@ to_tsquery('english', @tsquery)
              ORDER BY ts_rank(m.search, to_tsquery('english', @tsquery)) DESC, m.seq DESC LIMIT @limit
              """
            : """
              SELECT m.conversation_id AS ConversationId, c.title AS ConversationTitle, m.id, m.role, m.content, m.created_at AS CreatedAt
              FROM messages_fts f JOIN messages m ON m.seq = f.rowid JOIN conversations c ON c.id = m.conversation_id
              WHERE messages_fts MATCH @match AND m.user_id = @userId
              ORDER BY f.rank, m.seq DESC LIMIT @limit
              """;
        var (tsquery, match) = FullText.Query(terms);
        var rows = await connection.QueryAsync<TranscriptHit>(new CommandDefinition(sql, new { userId, limit, tsquery, match }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<long> LastSeqAsync(Guid conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(seq) FROM messages WHERE conversation_id = @conversationId", new { conversationId }, cancellationToken: cancellationToken)) ?? 0;
    }
}
