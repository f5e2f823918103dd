using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Chat;

public static class TurnStatus
{
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

public static class MessageStatus
{
    public const string Complete = "complete";
    public const string Streaming = "streaming";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

/// <summary>A turn as stored. Init properties: Dapper converts SQLite's 64-bit integers only when it sets properties.</summary>
public sealed record TurnRecord
{
    public Guid Id { get; init; }

    public Guid UserId { get; init; }

    public Guid AgentId { get; init; }

    public string Status { get; init; } = TurnStatus.Running;

    public string? IdempotencyKey { get; init; }

    public string? RequestHash { get; init; }

    public Guid UserMessageId { get; init; }

    public Guid AssistantMessageId { get; init; }

    public string? ErrorCode { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    public int LastEventSeq { get; init; }

    public bool IsFinished => Status != TurnStatus.Running;
}

public sealed record StoredEvent
{
    public int Seq { get; init; }

    public string Event { get; init; } = "";

    public string Data { get; init; } = "";
}

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

/// <summary>Another turn of this agent is running (the store allows one).</summary>
public sealed class TurnConflictException() : Exception("A turn of this agent is running.");

/// <summary>Turns, their messages and their recorded events, on SQLite or Postgres.</summary>
public sealed class TurnStore(AiChatDb db)
{
    private const string TurnColumns =
        """
        id, user_id AS UserId, agent_id AS AgentId, status, idempotency_key AS IdempotencyKey, request_hash AS RequestHash,
        user_message_id AS UserMessageId, assistant_message_id AS AssistantMessageId, error_code AS ErrorCode,
        created_at AS CreatedAt, completed_at AS CompletedAt, last_event_seq AS LastEventSeq
        """;

    private const string MessageColumns =
        """
        seq, id, turn_id AS TurnId, role, content, status, prompt_tokens AS PromptTokens, completion_tokens AS CompletionTokens,
        cost_nanousd AS CostNanousd, created_at AS CreatedAt
        """;

    /// <summary>
    /// Stores the turn, the user's message (before any model is called), the assistant's placeholder and the
    /// <c>turn.started</c> event in one transaction. Throws <see cref="TurnConflictException"/> when the agent has a running turn,
    /// and returns null when the idempotency key is already taken.
    /// </summary>
    public async Task<TurnRecord?> CreateAsync(TurnRecord turn, string content, StoredEvent started, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO turns (id, user_id, agent_id, status, idempotency_key, request_hash, user_message_id, assistant_message_id, created_at, heartbeat_at, last_event_seq)
                VALUES (@Id, @UserId, @AgentId, @Status, @IdempotencyKey, @RequestHash, @UserMessageId, @AssistantMessageId, @CreatedAt, @CreatedAt, @seq)
                """,
                new { turn.Id, turn.UserId, turn.AgentId, turn.Status, turn.IdempotencyKey, turn.RequestHash, turn.UserMessageId, turn.AssistantMessageId, turn.CreatedAt, seq = started.Seq },
                transaction, cancellationToken: cancellationToken));
        }
        catch (Exception ex) when (DbErrors.IsUniqueViolation(ex))
        {
            await transaction.RollbackAsync(cancellationToken);
            if (turn.IdempotencyKey is not null && await FindByIdempotencyKeyAsync(turn.UserId, turn.IdempotencyKey, cancellationToken) is not null)
            {
                return null;
            }

            throw new TurnConflictException();
        }

        const string insertMessage =
            "INSERT INTO messages (id, user_id, turn_id, role, content, status, created_at) VALUES (@id, @userId, @turnId, @role, @content, @status, @createdAt)";
        await connection.ExecuteAsync(new CommandDefinition(insertMessage,
            new { id = turn.UserMessageId, userId = turn.UserId, turnId = turn.Id, role = "user", content, status = MessageStatus.Complete, createdAt = turn.CreatedAt },
            transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition(insertMessage,
            new { id = turn.AssistantMessageId, userId = turn.UserId, turnId = turn.Id, role = "assistant", content = "", status = MessageStatus.Streaming, createdAt = turn.CreatedAt.AddTicks(10) },
            transaction, cancellationToken: cancellationToken));
        await InsertEventAsync(connection, transaction, turn.Id, started, turn.CreatedAt, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return turn;
    }

    public async Task<TurnRecord?> FindAsync(Guid turnId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<TurnRecord>(new CommandDefinition(
            $"SELECT {TurnColumns} FROM turns WHERE id = @turnId AND user_id = @userId", new { turnId, userId }, cancellationToken: cancellationToken));
    }

    public async Task<TurnRecord?> FindByIdempotencyKeyAsync(Guid userId, string key, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<TurnRecord>(new CommandDefinition(
            $"SELECT {TurnColumns} FROM turns WHERE user_id = @userId AND idempotency_key = @key", new { userId, key }, cancellationToken: cancellationToken));
    }

    public async Task AppendEventsAsync(Guid turnId, IReadOnlyList<StoredEvent> events, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var stored in events)
        {
            await InsertEventAsync(connection, transaction, turnId, stored, now, cancellationToken);
        }

        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE turns SET last_event_seq = @seq, heartbeat_at = @now WHERE id = @turnId",
            new { turnId, seq = events[^1].Seq, now }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<StoredEvent>> ReadEventsAsync(Guid turnId, int afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<StoredEvent>(new CommandDefinition(
            "SELECT seq, event, data FROM turn_events WHERE turn_id = @turnId AND seq > @afterSeq ORDER BY seq",
            new { turnId, afterSeq }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>Closes the turn: its status, the assistant message's final text, status and usage, and the last event, at once.</summary>
    public async Task FinishAsync(TurnRecord turn, string status, string? errorCode, string assistantText, string messageStatus,
        int? promptTokens, int? completionTokens, long? costNanousd, StoredEvent last, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var closed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE turns SET status = @status, error_code = @errorCode, completed_at = @now, last_event_seq = @seq WHERE id = @id AND status = 'running'",
            new { id = turn.Id, status, errorCode, now, seq = last.Seq }, transaction, cancellationToken: cancellationToken));
        if (closed == 0)
        {
            return; // recovery closed it already
        }

        await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE messages SET content = @assistantText, status = @messageStatus, prompt_tokens = @promptTokens,
                completion_tokens = @completionTokens, cost_nanousd = @costNanousd
            WHERE id = @id
            """,
            new { id = turn.AssistantMessageId, assistantText, messageStatus, promptTokens, completionTokens, costNanousd },
            transaction, cancellationToken: cancellationToken));
        await InsertEventAsync(connection, transaction, turn.Id, last, now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task HeartbeatAsync(Guid turnId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE turns SET heartbeat_at = @now WHERE id = @turnId AND status = 'running'", new { turnId, now }, cancellationToken: cancellationToken));
    }

    public async Task<bool> RequestCancelAsync(Guid turnId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE turns SET cancel_requested = @yes WHERE id = @turnId AND user_id = @userId AND status = 'running'",
            new { turnId, userId, yes = true }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task<bool> IsCancelRequestedAsync(Guid turnId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT cancel_requested FROM turns WHERE id = @turnId", new { turnId }, cancellationToken: cancellationToken));
    }

    /// <summary>Running turns whose heartbeat stopped: the instance running them died.</summary>
    public async Task<IReadOnlyList<TurnRecord>> FindLostAsync(DateTimeOffset staleBefore, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<TurnRecord>(new CommandDefinition(
            $"SELECT {TurnColumns} FROM turns WHERE status = 'running' AND heartbeat_at < @staleBefore",
            new { staleBefore }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<int> PurgeEventsAsync(DateTimeOffset finishedBefore, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM turn_events WHERE turn_id IN (SELECT id FROM turns WHERE completed_at < @finishedBefore)",
            new { finishedBefore }, cancellationToken: cancellationToken));
    }

    /// <summary>The user's messages newest first, strictly older than <paramref name="beforeSeq"/> (keyset: stable as new ones arrive).</summary>
    public async Task<IReadOnlyList<MessageRecord>> HistoryAsync(Guid userId, long beforeSeq, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<MessageRecord>(new CommandDefinition(
            $"SELECT {MessageColumns} FROM messages WHERE user_id = @userId AND seq < @beforeSeq ORDER BY seq DESC LIMIT @limit",
            new { userId, beforeSeq, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<MessageRecord?> FindMessageAsync(Guid messageId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<MessageRecord>(new CommandDefinition(
            $"SELECT {MessageColumns} FROM messages WHERE id = @messageId", new { messageId }, cancellationToken: cancellationToken));
    }

    /// <summary>Deletes the user's finished turns and all their messages; false when a turn is still running.</summary>
    public async Task<bool> DeleteHistoryAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var running = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM turns WHERE user_id = @userId AND status = 'running'", new { userId }, transaction, cancellationToken: cancellationToken));
        if (running > 0)
        {
            return false;
        }

        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM messages WHERE user_id = @userId", new { userId }, transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM turns WHERE user_id = @userId", new { userId }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private static Task InsertEventAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, Guid turnId, StoredEvent stored, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO turn_events (turn_id, seq, event, data, created_at) VALUES (@turnId, @Seq, @Event, @Data, @now)",
            new { turnId, stored.Seq, stored.Event, stored.Data, now }, transaction, cancellationToken: cancellationToken));
}
