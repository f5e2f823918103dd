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

/// <summary>A message a search found: where it is, how it scored, and an excerpt with its matches marked (<see cref="SearchSnippet"/>).</summary>
public sealed record SearchHitRecord
{
    public long Seq { get; init; }

    public Guid Id { get; init; }

    public Guid ConversationId { get; init; }

    public string? ConversationTitle { get; init; }

    public string Role { get; init; } = "";

    public string Content { get; init; } = "";

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>How many of the search's words the message has.</summary>
    public long Words { get; init; }

    /// <summary>How many times they occur in it.</summary>
    public long Occurrences { get; init; }

    public string Snippet { get; init; } = "";

    public SearchPosition Position => new(Words, Occurrences, Seq);
}

/// <summary>Where a hit stands in a search's order, best first: the keyset the next page continues after.</summary>
public readonly record struct SearchPosition(long Words, long Occurrences, long Seq)
{
    /// <summary>Ahead of every hit: the first page.</summary>
    public static SearchPosition Start => new(long.MaxValue, long.MaxValue, long.MaxValue);
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

    public async Task<IReadOnlyList<TranscriptMessage>> RecentAsync(Guid conversationId, Guid currentTurnId, Guid? answeredMessageId, long afterSeq, long beforeSeq, int limit, CancellationToken cancellationToken, bool countsOnly = false)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<TranscriptRow>(new CommandDefinition(
            """
            SELECT seq, id, role, CASE WHEN @countsOnly AND tokens IS NOT NULL THEN '' ELSE content END AS content, created_at AS CreatedAt, tokens FROM messages
            WHERE conversation_id = @conversationId AND seq > @afterSeq AND seq < @beforeSeq AND role IN ('user', 'assistant') AND content <> ''
              AND replaced_by_id IS NULL AND (turn_id IS NULL OR turn_id <> @currentTurnId) AND id <> @answered
            ORDER BY seq DESC LIMIT @limit
            """,
            new { conversationId, currentTurnId, answered = answeredMessageId ?? Guid.Empty, afterSeq, beforeSeq, limit, countsOnly }, cancellationToken: cancellationToken));
        return rows.Select(row => new TranscriptMessage(row.Seq, row.Id, row.Role, row.Content, row.CreatedAt, row.Tokens)).ToList();
    }

    public async Task<IReadOnlyList<TranscriptHit>> SearchAsync(Guid userId, string query, int limit, CancellationToken cancellationToken)
    {
        var hits = await SearchPageAsync(userId, FullText.Terms(query), SearchPosition.Start, limit, cancellationToken);
        return hits.Select(h => new TranscriptHit(h.ConversationId, h.ConversationTitle, h.Id, h.Role, h.Content, h.CreatedAt)).ToList();
    }

    /// <summary>
    /// A page of the user's current messages in all of their conversations that contain any of <paramref name="terms"/>,
    /// best first, strictly after <paramref name="after"/>. Best is how many of the words a message has, then how often
    /// they occur in it, then the newest: a score of the message and the query alone (unlike bm25, which moves with
    /// everything else in the index), so a cursor's position stays valid while messages come and go and the same query
    /// pages without duplicates or gaps. Each hit carries an excerpt with its matches marked (<see cref="SearchSnippet"/>).
    /// </summary>
    public async Task<IReadOnlyList<SearchHitRecord>> SearchPageAsync(
        Guid userId, IReadOnlyList<string> terms, SearchPosition after, int limit, CancellationToken cancellationToken)
    {
        if (terms.Count == 0)
        {
            return [];
        }

        var (tsquery, match) = FullText.Query(terms);
        var parameters = new DynamicParameters(new { userId, limit, afterWords = after.Words, afterOccurrences = after.Occurrences, afterSeq = after.Seq });
        string sql;
        if (db.Provider == StoreProvider.Postgres)
        {
            // ts_headline drops what its parser reads as tags: '<' and '>' go through it as control characters.
            parameters.AddDynamicParams(new
            {
                tsquery, words = string.Join(' ', terms), terms = terms.ToArray(),
                headline = $"StartSel={SearchSnippet.MarkStart},StopSel={SearchSnippet.MarkEnd},MaxWords=20,MinWords=8",
                translateFrom = SearchSnippet.HeadlineFrom, translateTo = SearchSnippet.HeadlineTo,
            });
            sql = """
                WITH q AS (SELECT to_tsquery('english', @tsquery) AS query, tsvector_to_array(to_tsvector('english', @words)) AS lexemes),
                term AS (SELECT tsvector_to_array(to_tsvector('english', t)) AS lexemes FROM unnest(@terms) t),
                page AS (
                    SELECT * FROM (
                        SELECT m.seq, m.id, m.conversation_id, m.role, m.content, m.created_at,
                               (SELECT count(*) FROM term WHERE term.lexemes && tsvector_to_array(m.search)) AS words,
                               (SELECT COALESCE(sum(cardinality(u.positions)), 0) FROM unnest(m.search) u WHERE u.lexeme = ANY(q.lexemes)) AS occurrences
                        FROM messages m CROSS JOIN q
                        WHERE m.user_id = @userId AND m.replaced_by_id IS NULL AND m.search @@ q.query
                    ) scored
                    WHERE (words, occurrences, seq) < (@afterWords, @afterOccurrences, @afterSeq)
                    ORDER BY words DESC, occurrences DESC, seq DESC LIMIT @limit
                )
                SELECT p.seq, p.id, p.conversation_id AS ConversationId, c.title AS ConversationTitle, p.role, p.content, p.created_at AS CreatedAt,
                       p.words, p.occurrences,
                       ts_headline('english', translate(p.content, @translateFrom, @translateTo), q.query, @headline) AS snippet
                FROM page p JOIN conversations c ON c.id = p.conversation_id CROSS JOIN q
                ORDER BY p.words DESC, p.occurrences DESC, p.seq DESC
                """;
        }
        else
        {
            // A word's own MATCH once per term (SQLite evaluates each IN list once); the marks highlight() leaves count its occurrences.
            parameters.AddDynamicParams(new { match, markStart = SearchSnippet.MarkStart.ToString(), markEnd = SearchSnippet.MarkEnd.ToString(), ellipsis = SearchSnippet.Ellipsis });
            var words = string.Join(" + ", terms.Select((term, i) =>
            {
                parameters.Add($"term{i}", FullText.Phrase(term));
                return $"(m.seq IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH @term{i}))";
            }));
            sql = $"""
                WITH found AS (
                    SELECT m.seq, {words} AS words, highlight(messages_fts, 0, @markStart, @markEnd) AS marked
                    FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid
                    WHERE messages_fts MATCH @match AND m.user_id = @userId AND m.replaced_by_id IS NULL
                ),
                page AS (
                    SELECT * FROM (SELECT seq, words, length(marked) - length(replace(marked, @markStart, '')) AS occurrences FROM found) scored
                    WHERE (words, occurrences, seq) < (@afterWords, @afterOccurrences, @afterSeq)
                    ORDER BY words DESC, occurrences DESC, seq DESC LIMIT @limit
                )
                SELECT p.seq, m.id, m.conversation_id AS ConversationId, c.title AS ConversationTitle, m.role, m.content, m.created_at AS CreatedAt,
                       p.words, p.occurrences, snippet(messages_fts, 0, @markStart, @markEnd, @ellipsis, 12) AS snippet
                FROM page p JOIN messages_fts ON messages_fts.rowid = p.seq JOIN messages m ON m.seq = p.seq JOIN conversations c ON c.id = m.conversation_id
                WHERE messages_fts MATCH @match
                ORDER BY p.words DESC, p.occurrences DESC, p.seq DESC
                """;
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<SearchHitRecord>(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken));
        return db.Provider == StoreProvider.Postgres ? rows.Select(h => h with { Snippet = SearchSnippet.FromHeadline(h.Snippet, h.Content) }).ToList() : rows.AsList();
    }

    public async Task<long> LastSeqAsync(Guid conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(seq) FROM messages WHERE conversation_id = @conversationId", new { conversationId }, cancellationToken: cancellationToken)) ?? 0;
    }

    // Settable properties: Dapper converts SQLite's 64-bit integers (and reads a NULL count) only when it sets properties.
    private sealed class TranscriptRow
    {
        public long Seq { get; set; }

        public Guid Id { get; set; }

        public string Role { get; set; } = "";

        public string Content { get; set; } = "";

        public DateTimeOffset CreatedAt { get; set; }

        public int? Tokens { get; set; }
    }
}
