using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Chat;

/// <summary>Who named a conversation: the user (never overwritten), or the title call after its first exchange.</summary>
public static class TitleSources
{
    public const string User = "user";
    public const string Generated = "generated";
}

/// <summary>A conversation as stored. Init properties: Dapper converts SQLite's 64-bit integers only when it sets properties.</summary>
public sealed record ConversationRecord
{
    public Guid Id { get; init; }

    public Guid UserId { get; init; }

    public bool IsDefault { get; init; }

    public string? Title { get; init; }

    public string? TitleSource { get; init; }

    /// <summary>The catalogue model its turns use; null: the catalogue's default.</summary>
    public string? Model { get; init; }

    public bool Archived { get; init; }

    /// <summary>The runtime's own id for it (a Letta conversation); null on the built-in runtime and for the default one.</summary>
    public string? ExternalId { get; init; }

    public int MessageCount { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? LastMessageAt { get; init; }

    /// <summary>Its last activity (the last message, else its creation): what the list is ordered by.</summary>
    public DateTimeOffset ActivityAt { get; init; }
}

/// <summary>What a PATCH changes; a null field stays as it is.</summary>
public sealed record ConversationChange(string? Title, string? Model, bool? Archived);

/// <summary>How deleting a conversation came out.</summary>
public enum ConversationDeletion
{
    Deleted,
    NotFound,
    Busy,
}

/// <summary>
/// The user's conversations on SQLite or Postgres: each has its own transcript (its messages and turns, which go with
/// it), title and model; at most one is the default (a partial unique index), which the single-chat endpoints act on.
/// </summary>
public sealed class ConversationStore(AiChatDb db)
{
    internal const string Columns =
        """
        id, user_id AS UserId, is_default AS IsDefault, title, title_source AS TitleSource, model, archived, external_id AS ExternalId,
        message_count AS MessageCount, created_at AS CreatedAt, last_message_at AS LastMessageAt, activity_at AS ActivityAt
        """;

    public async Task InsertAsync(ConversationRecord conversation, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO conversations (id, user_id, is_default, title, title_source, model, archived, external_id, created_at, activity_at)
            VALUES (@Id, @UserId, @IsDefault, @Title, @TitleSource, @Model, @Archived, @ExternalId, @CreatedAt, @CreatedAt)
            """,
            conversation, cancellationToken: cancellationToken));
    }

    /// <summary>The user's default conversation, made now if there is none (idempotent, also when two requests race).</summary>
    public async Task<ConversationRecord> EnsureDefaultAsync(Guid userId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleAsync<ConversationRecord>(new CommandDefinition(
            $"""
            INSERT INTO conversations (id, user_id, is_default, created_at, activity_at)
            SELECT @id, @userId, @yes, @now, @now WHERE NOT EXISTS (SELECT 1 FROM conversations WHERE user_id = @userId AND is_default)
            ON CONFLICT DO NOTHING;
            SELECT {Columns} FROM conversations WHERE user_id = @userId AND is_default;
            """,
            new { id = Guid.CreateVersion7(), userId, yes = true, now }, cancellationToken: cancellationToken));
    }

    /// <summary>One of the user's conversations; null when there is none with that id (or it is another user's).</summary>
    public async Task<ConversationRecord?> FindAsync(Guid userId, Guid conversationId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ConversationRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM conversations WHERE id = @conversationId AND user_id = @userId",
            new { userId, conversationId }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// A page of the user's conversations by last activity, newest first, strictly after the cursor's position
    /// (<paramref name="before"/>: the activity instant and id of the last one seen); archived ones only when asked for.
    /// </summary>
    public async Task<IReadOnlyList<ConversationRecord>> ListAsync(
        Guid userId, bool archived, (DateTimeOffset ActivityAt, Guid Id)? before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var after = before is null ? "" : "AND (activity_at < @beforeAt OR (activity_at = @beforeAt AND id < @beforeId))";
        var rows = await connection.QueryAsync<ConversationRecord>(new CommandDefinition(
            $"""
            SELECT {Columns} FROM conversations
            WHERE user_id = @userId AND archived = @archived {after}
            ORDER BY activity_at DESC, id DESC LIMIT @limit
            """,
            new { userId, archived, beforeAt = before?.ActivityAt, beforeId = before?.Id, limit }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    /// <summary>Applies a change to one of the user's conversations; a title set here is the user's. Null when there is no such conversation.</summary>
    public async Task<ConversationRecord?> UpdateAsync(Guid userId, Guid conversationId, ConversationChange change, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<ConversationRecord>(new CommandDefinition(
            $"""
            UPDATE conversations SET
                title = CASE WHEN @setTitle THEN @title ELSE title END,
                title_source = CASE WHEN @setTitle THEN @user ELSE title_source END,
                model = CASE WHEN @setModel THEN @model ELSE model END,
                archived = CASE WHEN @setArchived THEN @archived ELSE archived END
            WHERE id = @conversationId AND user_id = @userId
            RETURNING {Columns}
            """,
            new
            {
                userId, conversationId,
                setTitle = change.Title is not null, title = change.Title, user = TitleSources.User,
                setModel = change.Model is not null, model = change.Model,
                setArchived = change.Archived is not null, archived = change.Archived ?? false,
            },
            cancellationToken: cancellationToken));
    }

    /// <summary>Sets a generated title unless the user named the conversation meanwhile; false when it was not set.</summary>
    public async Task<bool> SetGeneratedTitleAsync(Guid conversationId, string title, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE conversations SET title = @title, title_source = @generated WHERE id = @conversationId AND title_source IS NULL",
            new { conversationId, title, generated = TitleSources.Generated }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>
    /// Deletes one of the user's conversations with its messages, turns and their events, and its summary, in one
    /// transaction; refused while a turn runs in it. The agent's memory is not touched. Gives the deleted row (for the
    /// runtime's side of it) when it was deleted.
    /// </summary>
    public Task<(ConversationDeletion Outcome, ConversationRecord? Deleted)> DeleteAsync(Guid userId, Guid conversationId, CancellationToken cancellationToken) =>
        ClearAsync(userId, conversationId, remove: true, cancellationToken);

    /// <summary>
    /// Empties the user's default conversation (<c>DELETE /chat/history</c>): its turns and messages go, its summary and
    /// counts start again, the conversation stays. Refused while a turn runs in it.
    /// </summary>
    public async Task<ConversationDeletion> EmptyDefaultAsync(Guid userId, CancellationToken cancellationToken) =>
        (await ClearAsync(userId, null, remove: false, cancellationToken)).Outcome;

    // One transaction: the conversation locked, no running turn in it, then its messages and turns (with their events)
    // deleted, and the conversation itself deleted or reset.
    private async Task<(ConversationDeletion Outcome, ConversationRecord? Conversation)> ClearAsync(
        Guid userId, Guid? conversationId, bool remove, CancellationToken cancellationToken)
    {
        var which = conversationId is null ? "is_default" : "id = @conversationId";
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        using var results = await connection.QueryMultipleAsync(new CommandDefinition(
            $"""
            SELECT {Columns} FROM conversations WHERE user_id = @userId AND {which}{ForUpdate};
            SELECT COUNT(*) FROM turns WHERE status = 'running'
              AND conversation_id IN (SELECT id FROM conversations WHERE user_id = @userId AND {which});
            """,
            new { userId, conversationId }, transaction, cancellationToken: cancellationToken));
        var conversation = await results.ReadSingleOrDefaultAsync<ConversationRecord>();
        var running = await results.ReadSingleAsync<long>();
        if (conversation is null)
        {
            return (ConversationDeletion.NotFound, null);
        }

        if (running > 0)
        {
            return (ConversationDeletion.Busy, null);
        }

        var last = remove
            ? "DELETE FROM conversations WHERE id = @id;"
            : "UPDATE conversations SET summary = NULL, summary_through_seq = 0, reset_seq = 0, message_count = 0, forgotten_count = 0, last_message_at = NULL WHERE id = @id;";
        await connection.ExecuteAsync(new CommandDefinition(
            $"""
            DELETE FROM messages WHERE conversation_id = @id;
            DELETE FROM turns WHERE conversation_id = @id;
            {last}
            """,
            new { id = conversation.Id }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return (ConversationDeletion.Deleted, conversation);
    }

    /// <summary>Every conversation of the user, newest activity first (the export).</summary>
    public async Task<IReadOnlyList<ConversationRecord>> AllAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ConversationRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM conversations WHERE user_id = @userId ORDER BY activity_at DESC, id DESC", new { userId }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    // SQLite needs no row lock: its transactions begin IMMEDIATE (Microsoft.Data.Sqlite's default), holding the write lock.
    private string ForUpdate => db.Provider == StoreProvider.Postgres ? " FOR UPDATE" : "";
}
