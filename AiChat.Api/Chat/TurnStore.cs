using System.Data.Common;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
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

    public Guid ConversationId { get; init; }

    public string Status { get; init; } = TurnStatus.Running;

    public string? IdempotencyKey { get; init; }

    public string? RequestHash { get; init; }

    public Guid UserMessageId { get; init; }

    public Guid AssistantMessageId { get; init; }

    public string? ErrorCode { get; init; }

    public int? ErrorStatus { get; init; }

    public string? ErrorDetail { get; init; }

    public string? ErrorFigures { get; init; }

    public long? BudgetRemainingNanousd { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    public int LastEventSeq { get; init; }

    public bool IsFinished => Status != TurnStatus.Running;

    /// <summary>Not stored: set when the turn was created, true when no title was set and no answer of its conversation has completed yet.</summary>
    public bool NeedsTitle { get; init; }

    /// <summary>The stored failure of a failed or cancelled turn.</summary>
    public TurnFailure? Failure => ErrorCode is null
        ? null
        : new TurnFailure(
            ErrorStatus ?? StatusCodes.Status500InternalServerError,
            ErrorCode,
            ErrorDetail ?? "The turn failed.",
            ErrorFigures is null ? null : JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(ErrorFigures)!.ToDictionary(f => f.Key, f => (object?)f.Value));
}

public sealed record StoredEvent
{
    public int Seq { get; init; }

    public string Event { get; init; } = "";

    public string Data { get; init; } = "";
}

/// <summary>How a turn ends, written at once: its status and failure, the assistant's final text and usage, the budget left, the last events.</summary>
public sealed record TurnEnding(
    string Status,
    TurnFailure? Failure,
    string AssistantText,
    string MessageStatus,
    int? PromptTokens,
    int? CompletionTokens,
    long? CostNanos,
    long? BudgetRemainingNanos,
    IReadOnlyList<StoredEvent> Events);

/// <summary>Another turn of this conversation is running (the store allows one).</summary>
public sealed class TurnConflictException() : Exception("A turn of this conversation is running.");

/// <summary>The user has as many turns running as they may (<see cref="ChatOptions.MaxConcurrentTurnsPerUser"/>).</summary>
public sealed class TooManyTurnsException() : Exception("The user has as many turns running as they may.");

/// <summary>The conversation a turn was asked for is not the user's (or does not exist).</summary>
public sealed class ConversationNotFoundException() : Exception("No such conversation.");

/// <summary>The answer a regenerate was asked for is not its conversation's last current answer (nothing was stored).</summary>
public sealed class NotLastAnswerException() : Exception("Only the conversation's last answer can be regenerated.");

/// <summary>
/// Turns and their recorded events, on SQLite or Postgres; a turn's messages are written with it, each with its text's
/// token count (what the context reads instead of tokenising the history again). The stored running turn is what holds
/// its conversation (one per conversation, a unique index); a reset holds it with the conversation's lease instead, and
/// no turn is stored while that lease is current.
/// </summary>
public sealed class TurnStore(AiChatDb db, TokenCounter tokens)
{
    /// <summary>
    /// Ends the statement that updates the turn's conversation (<c>@conversation</c>): whether the turn, if it completes,
    /// should name it: no title is set, and no answer in it has completed yet (its first completed exchange).
    /// </summary>
    private const string ReturningNeedsTitle =
        """
        RETURNING CASE WHEN title_source IS NULL AND NOT EXISTS (
            SELECT 1 FROM messages d WHERE d.conversation_id = @conversation AND d.role = 'assistant' AND d.status = 'complete') THEN 1 ELSE 0 END
        """;

    private const string TurnColumns =
        """
        id, user_id AS UserId, agent_id AS AgentId, conversation_id AS ConversationId, status, idempotency_key AS IdempotencyKey, request_hash AS RequestHash,
        user_message_id AS UserMessageId, assistant_message_id AS AssistantMessageId, error_code AS ErrorCode,
        error_status AS ErrorStatus, error_detail AS ErrorDetail, error_figures AS ErrorFigures, budget_remaining_nanousd AS BudgetRemainingNanousd,
        created_at AS CreatedAt, completed_at AS CompletedAt, last_event_seq AS LastEventSeq
        """;

    /// <summary>
    /// Stores the turn (for the user's agent, in <paramref name="conversationId"/> or, when null, the user's default
    /// conversation), the user's message (before any model is called), the assistant's placeholder, the conversation's
    /// new count and activity, and the <c>turn.started</c> event, in one transaction. The turn is refused when the user
    /// has <paramref name="maxRunning"/> turns running (<see cref="TooManyTurnsException"/>; on Postgres the agents row is
    /// locked first, so two instances cannot both take the last place), when the conversation has a running turn
    /// (<see cref="TurnConflictException"/>, also when the user is at the limit too), or when there is no such conversation (<see cref="ConversationNotFoundException"/>).
    /// Returns null when the idempotency key is already taken.
    /// </summary>
    public async Task<TurnRecord?> CreateAsync(TurnRecord turn, Guid? conversationId, string content, StoredEvent started, int maxRunning, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var postgres = db.Provider == StoreProvider.Postgres;
        Guid? stored;
        try
        {
            var which = conversationId is null ? "c.is_default" : "c.id = @conversationId";
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                $"""
                {(postgres ? "SELECT id FROM agents WHERE user_id = @UserId FOR UPDATE;" : "")}
                INSERT INTO turns (id, user_id, agent_id, conversation_id, status, idempotency_key, request_hash, user_message_id, assistant_message_id, created_at, heartbeat_at, last_event_seq)
                SELECT @Id, @UserId, a.id, c.id, @Status, @IdempotencyKey, @RequestHash, @UserMessageId, @AssistantMessageId, @CreatedAt, @CreatedAt, @seq
                FROM agents a JOIN conversations c ON c.user_id = a.user_id AND {which}
                WHERE a.user_id = @UserId AND (c.lease_turn_id IS NULL OR c.lease_until < @CreatedAt)
                  AND (SELECT COUNT(*) FROM turns r WHERE r.user_id = @UserId AND r.status = 'running') < @maxRunning
                RETURNING conversation_id;
                """,
                new { turn.Id, turn.UserId, conversationId, turn.Status, turn.IdempotencyKey, turn.RequestHash, turn.UserMessageId, turn.AssistantMessageId, turn.CreatedAt, seq = started.Seq, maxRunning },
                transaction, cancellationToken: cancellationToken));
            if (postgres)
            {
                await results.ReadAsync<Guid>();
            }

            stored = await results.ReadSingleOrDefaultAsync<Guid?>();
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

        if (stored is not { } conversation)
        {
            // Nothing stored: say why (this runs only when a turn is refused). A request whose key was stored meanwhile
            // attaches to that turn. A conversation that is answering is busy whether or not the user is also at the
            // limit: waiting for its turn is what helps, not another conversation.
            var target = conversationId is null ? "c.is_default" : "c.id = @conversationId";
            var (agents, conversations, running, keyed) = await connection.QuerySingleAsync<(long, long, long, long)>(new CommandDefinition(
                $"""
                SELECT (SELECT COUNT(*) FROM agents WHERE user_id = @userId),
                       (SELECT COUNT(*) FROM conversations c WHERE c.user_id = @userId AND {target}),
                       (SELECT COUNT(*) FROM turns t JOIN conversations c ON c.id = t.conversation_id WHERE c.user_id = @userId AND {target} AND t.status = 'running')
                     + (SELECT COUNT(*) FROM conversations c WHERE c.user_id = @userId AND {target} AND c.lease_turn_id IS NOT NULL AND c.lease_until >= @now),
                       (SELECT COUNT(*) FROM turns WHERE user_id = @userId AND idempotency_key = @key)
                """,
                new { userId = turn.UserId, conversationId, now = turn.CreatedAt, key = turn.IdempotencyKey }, transaction, cancellationToken: cancellationToken));
            await transaction.RollbackAsync(cancellationToken);
            if (keyed > 0)
            {
                return null;
            }

            throw agents == 0 ? new Agents.AgentNotFoundException()
                : conversations == 0 ? new ConversationNotFoundException()
                : running > 0 ? new TurnConflictException()
                : new TooManyTurnsException();
        }

        var needsTitle = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            $"""
            INSERT INTO messages (id, user_id, conversation_id, turn_id, role, content, status, created_at, reply_to_id, tokens)
            VALUES (@UserMessageId, @UserId, @conversation, @Id, 'user', @content, @complete, @CreatedAt, NULL, @contentTokens),
                   (@AssistantMessageId, @UserId, @conversation, @Id, 'assistant', '', @streaming, @assistantAt, @UserMessageId, 0);
            INSERT INTO turn_events (turn_id, seq, event, data, created_at) VALUES (@Id, @seq, @event, @data, @CreatedAt);
            UPDATE conversations SET message_count = message_count + 2, last_message_at = @assistantAt, activity_at = @assistantAt
            WHERE id = @conversation
            {ReturningNeedsTitle};
            """,
            new
            {
                turn.Id, turn.UserId, turn.UserMessageId, turn.AssistantMessageId, turn.CreatedAt, content, contentTokens = tokens.Count(content), conversation,
                complete = MessageStatus.Complete, streaming = MessageStatus.Streaming, assistantAt = turn.CreatedAt.AddTicks(10),
                seq = started.Seq, @event = started.Event, data = started.Data,
            },
            transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return turn with { ConversationId = conversation, NeedsTitle = needsTitle };
    }

    /// <summary>
    /// Stores a regenerate of <paramref name="answerId"/> in the turn's conversation, in one transaction: the new turn for
    /// the same user message (<see cref="TurnRecord.UserMessageId"/>), its assistant placeholder, the old answer marked as
    /// replaced by it (an alternative from now on), the conversation's activity (its message count stays), and the
    /// <c>turn.started</c> event. Refused, with nothing stored, when the answer is not the conversation's last current
    /// message (<see cref="NotLastAnswerException"/>), when a turn runs in the conversation (<see cref="TurnConflictException"/>),
    /// when the user has <paramref name="maxRunning"/> turns running (<see cref="TooManyTurnsException"/>), or when the
    /// answer is not in the user's conversation (<see cref="ConversationNotFoundException"/>). Returns null when the
    /// idempotency key is already taken.
    /// </summary>
    public async Task<TurnRecord?> RegenerateAsync(TurnRecord turn, Guid answerId, StoredEvent started, int maxRunning, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var postgres = db.Provider == StoreProvider.Postgres;
        using (var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            {(postgres ? "SELECT id FROM agents WHERE user_id = @UserId FOR UPDATE;" : "")}
            SELECT m.seq AS Seq, m.role AS Role, m.reply_to_id AS ReplyToId, m.replaced_by_id AS ReplacedById,
                (SELECT MAX(l.seq) FROM messages l WHERE l.conversation_id = m.conversation_id AND l.replaced_by_id IS NULL) AS LastSeq,
                (SELECT COUNT(*) FROM turns r WHERE r.conversation_id = m.conversation_id AND r.status = 'running')
                  + (CASE WHEN c.lease_turn_id IS NOT NULL AND c.lease_until >= @now THEN 1 ELSE 0 END) AS RunningHere,
                (SELECT COUNT(*) FROM turns r WHERE r.user_id = @UserId AND r.status = 'running') AS Running,
                (SELECT COUNT(*) FROM agents WHERE user_id = @UserId) AS Agents
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.id = @answerId AND m.conversation_id = @ConversationId AND c.user_id = @UserId;
            """,
            new { turn.UserId, turn.ConversationId, answerId, now = turn.CreatedAt }, transaction, cancellationToken: cancellationToken)))
        {
            if (postgres)
            {
                await results.ReadAsync<Guid>();
            }

            var answer = await results.ReadSingleOrDefaultAsync<AnswerState>();
            Exception? refusal = answer is null ? new ConversationNotFoundException()
                : answer.Agents == 0 ? new Agents.AgentNotFoundException()
                : !answer.IsLastAnswerTo(turn.UserMessageId) ? new NotLastAnswerException()
                : answer.RunningHere > 0 ? new TurnConflictException()
                : answer.Running >= maxRunning ? new TooManyTurnsException()
                : null;
            if (refusal is not null)
            {
                await transaction.RollbackAsync(cancellationToken);
                throw refusal;
            }
        }

        bool needsTitle;
        try
        {
            needsTitle = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                $"""
                INSERT INTO turns (id, user_id, agent_id, conversation_id, status, idempotency_key, request_hash, user_message_id, assistant_message_id, created_at, heartbeat_at, last_event_seq)
                SELECT @Id, @UserId, a.id, @conversation, @Status, @IdempotencyKey, @RequestHash, @UserMessageId, @AssistantMessageId, @CreatedAt, @CreatedAt, @seq
                FROM agents a WHERE a.user_id = @UserId;
                INSERT INTO messages (id, user_id, conversation_id, turn_id, role, content, status, created_at, reply_to_id, tokens)
                VALUES (@AssistantMessageId, @UserId, @conversation, @Id, 'assistant', '', @streaming, @assistantAt, @UserMessageId, 0);
                UPDATE messages SET replaced_by_id = @AssistantMessageId WHERE id = @answerId;
                INSERT INTO turn_events (turn_id, seq, event, data, created_at) VALUES (@Id, @seq, @event, @data, @CreatedAt);
                UPDATE conversations SET last_message_at = @assistantAt, activity_at = @assistantAt
                WHERE id = @conversation
                {ReturningNeedsTitle};
                """,
                new
                {
                    turn.Id, turn.UserId, conversation = turn.ConversationId, turn.Status, turn.IdempotencyKey, turn.RequestHash, turn.UserMessageId,
                    turn.AssistantMessageId, turn.CreatedAt, answerId, streaming = MessageStatus.Streaming, assistantAt = turn.CreatedAt.AddTicks(10),
                    seq = started.Seq, @event = started.Event, data = started.Data,
                },
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

        await transaction.CommitAsync(cancellationToken);
        return turn with { NeedsTitle = needsTitle };
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

    /// <summary>The turn with its two messages, in one read: what a JSON answer is made of.</summary>
    public async Task<TurnResultRow?> FindResultAsync(Guid turnId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            SELECT {TurnColumns} FROM turns WHERE id = @turnId AND user_id = @userId;
            SELECT {MessageStore.Columns} FROM messages
            WHERE id IN (SELECT user_message_id FROM turns WHERE id = @turnId AND user_id = @userId)
               OR id IN (SELECT assistant_message_id FROM turns WHERE id = @turnId AND user_id = @userId)
            ORDER BY seq;
            """,
            new { turnId, userId }, cancellationToken: cancellationToken));
        var turn = await results.ReadSingleOrDefaultAsync<TurnRecord>();
        var messages = (await results.ReadAsync<MessageRecord>()).AsList();
        return turn is null ? null : new TurnResultRow(turn, messages.FirstOrDefault(m => m.Id == turn.UserMessageId), messages.FirstOrDefault(m => m.Id == turn.AssistantMessageId));
    }

    public async Task AppendEventsAsync(Guid turnId, IReadOnlyList<StoredEvent> events, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var (sql, parameters) = InsertEvents(turnId, events, now);
        parameters.Add("seq", events[^1].Seq);
        await connection.ExecuteAsync(new CommandDefinition(
            sql + "UPDATE turns SET last_event_seq = @seq, heartbeat_at = @now WHERE id = @turnId;\n" + StoreSignals.SignalSql(db.Provider, "@turnId"),
            parameters, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<StoredEvent>> ReadEventsAsync(Guid turnId, int afterSeq, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<StoredEvent>(new CommandDefinition(
            "SELECT seq, event, data FROM turn_events WHERE turn_id = @turnId AND seq > @afterSeq ORDER BY seq",
            new { turnId, afterSeq }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>
    /// Closes the turn, at once: its status and failure, the budget left, the assistant message's final text, status and
    /// usage, and its last events. False when the turn was closed already (recovery got there first).
    /// </summary>
    public async Task<bool> FinishAsync(TurnRecord turn, TurnEnding ending, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var closed = await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE turns SET status = @turnStatus, error_code = @errorCode, error_status = @errorStatus, error_detail = @errorDetail, error_figures = @errorFigures,
                budget_remaining_nanousd = @BudgetRemainingNanos, completed_at = @now, last_event_seq = @seq
            WHERE id = @id AND status = 'running'
            """,
            new
            {
                id = turn.Id, turnStatus = ending.Status, errorCode = ending.Failure?.Code, errorStatus = ending.Failure?.Status, errorDetail = ending.Failure?.Detail,
                errorFigures = ending.Failure?.Figures is { } figures ? JsonSerializer.Serialize(figures, TurnEvents.Json) : null,
                ending.BudgetRemainingNanos, now, seq = ending.Events[^1].Seq,
            },
            transaction, cancellationToken: cancellationToken));
        if (closed == 0)
        {
            return false;
        }

        var (sql, parameters) = InsertEvents(turn.Id, ending.Events, now);
        parameters.AddDynamicParams(new
        {
            assistantId = turn.AssistantMessageId, userId = turn.UserId,
            ending.AssistantText, textTokens = tokens.Count(ending.AssistantText), ending.MessageStatus,
            ending.PromptTokens, ending.CompletionTokens, ending.CostNanos,
        });
        await connection.ExecuteAsync(new CommandDefinition(
            sql + """
            UPDATE messages SET content = @AssistantText, tokens = @textTokens, status = @MessageStatus, prompt_tokens = @PromptTokens,
                completion_tokens = @CompletionTokens, cost_nanousd = @CostNanos
            WHERE id = @assistantId;
            UPDATE agents SET last_active_at = @now WHERE user_id = @userId;
            """ + StoreSignals.SignalSql(db.Provider, "@turnId"),
            parameters, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>Records that the turn is alive and reads whether a cancel was asked for it, in one statement.</summary>
    public async Task<bool> HeartbeatAsync(Guid turnId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<bool?>(new CommandDefinition(
            "UPDATE turns SET heartbeat_at = @now WHERE id = @turnId AND status = 'running' RETURNING cancel_requested",
            new { turnId, now }, cancellationToken: cancellationToken)) == true;
    }

    public async Task<bool> RequestCancelAsync(Guid turnId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE turns SET cancel_requested = @yes WHERE id = @turnId AND user_id = @userId AND status = 'running'",
            new { turnId, userId, yes = true }, cancellationToken: cancellationToken)) == 1;
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

    /// <summary>One INSERT of several events (numbered parameters), ending in a semicolon so more statements can follow.</summary>
    private static (string Sql, DynamicParameters Parameters) InsertEvents(Guid turnId, IReadOnlyList<StoredEvent> events, DateTimeOffset now)
    {
        var parameters = new DynamicParameters(new { turnId, now });
        var sql = new StringBuilder("INSERT INTO turn_events (turn_id, seq, event, data, created_at) VALUES ");
        for (var i = 0; i < events.Count; i++)
        {
            sql.Append(i == 0 ? "" : ", ").Append($"(@turnId, @s{i}, @e{i}, @d{i}, @now)");
            parameters.Add($"s{i}", events[i].Seq);
            parameters.Add($"e{i}", events[i].Event);
            parameters.Add($"d{i}", events[i].Data);
        }

        return (sql.Append(";\n").ToString(), parameters);
    }
}

/// <summary>What a regenerate checks of the answer it replaces, read in its transaction.</summary>
internal sealed record AnswerState
{
    public long Seq { get; init; }

    public string Role { get; init; } = "";

    public Guid? ReplyToId { get; init; }

    public Guid? ReplacedById { get; init; }

    /// <summary>The position of the conversation's last current message.</summary>
    public long? LastSeq { get; init; }

    public long RunningHere { get; init; }

    public long Running { get; init; }

    public long Agents { get; init; }

    /// <summary>Whether it is the conversation's last current message, an answer to that user message (so it may be regenerated).</summary>
    public bool IsLastAnswerTo(Guid userMessageId) => Role == "assistant" && ReplyToId == userMessageId && ReplacedById is null && Seq == LastSeq;
}

/// <summary>A turn and its two messages as stored.</summary>
public sealed record TurnResultRow(TurnRecord Turn, MessageRecord? UserMessage, MessageRecord? AssistantMessage);
