using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Clients;

/// <summary>
/// Which conversation a stateless OpenAI-compatible client is in: for each conversation it used, the hash of the
/// transcript it will resend next time (its messages so far and the last answer). Goes with its conversation.
/// </summary>
public sealed class ClientThreadStore(AiChatDb db, TimeProvider time)
{
    /// <summary>The conversation whose transcript hashes to <paramref name="historyHash"/> (the most recent when several do).</summary>
    public async Task<Guid?> FindAsync(Guid userId, string historyHash, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QueryFirstOrDefaultAsync<Guid?>(new CommandDefinition(
            "SELECT conversation_id FROM client_threads WHERE user_id = @userId AND history_hash = @historyHash ORDER BY updated_at DESC LIMIT 1",
            new { userId, historyHash }, cancellationToken: cancellationToken));
    }

    public async Task SetAsync(Guid userId, Guid conversationId, string historyHash, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO client_threads (conversation_id, user_id, history_hash, updated_at) VALUES (@conversationId, @userId, @historyHash, @now)
            ON CONFLICT (conversation_id) DO UPDATE SET history_hash = excluded.history_hash, updated_at = excluded.updated_at
            """,
            new { conversationId, userId, historyHash, now = time.GetUtcNow() }, cancellationToken: cancellationToken));
    }
}
