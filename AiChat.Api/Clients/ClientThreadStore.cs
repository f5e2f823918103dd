using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Clients;

/// <summary>Where a transcript a client sent was seen: its conversation, and whether the conversation still ends there.</summary>
public sealed record ThreadMatch(Guid ConversationId, bool Latest);

/// <summary>
/// Which conversation a stateless OpenAI-compatible client is in: for each answer given through <c>/v1</c>, the hash of
/// the transcript the client will resend (its messages so far and that answer). Goes with its conversation.
/// </summary>
public sealed class ClientThreadStore(AiChatDb db, TimeProvider time)
{
    /// <summary>The conversation where this transcript was seen (the most recent when several were), or null.</summary>
    public async Task<ThreadMatch?> FindAsync(Guid userId, string historyHash, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QueryFirstOrDefaultAsync<(Guid ConversationId, int Latest)?>(new CommandDefinition(
            """
            SELECT t.conversation_id AS ConversationId,
                   CASE WHEN EXISTS (SELECT 1 FROM client_threads n WHERE n.conversation_id = t.conversation_id AND n.updated_at > t.updated_at) THEN 0 ELSE 1 END AS Latest
            FROM client_threads t WHERE t.user_id = @userId AND t.history_hash = @historyHash
            ORDER BY t.updated_at DESC LIMIT 1
            """,
            new { userId, historyHash }, cancellationToken: cancellationToken));
        return row is { } found ? new ThreadMatch(found.ConversationId, found.Latest == 1) : null;
    }

    public async Task AddAsync(Guid userId, Guid conversationId, string historyHash, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO client_threads (conversation_id, user_id, history_hash, updated_at) VALUES (@conversationId, @userId, @historyHash, @now)
            ON CONFLICT (conversation_id, history_hash) DO UPDATE SET updated_at = excluded.updated_at
            """,
            new { conversationId, userId, historyHash, now = time.GetUtcNow() }, cancellationToken: cancellationToken));
    }
}
