using System.Globalization;
using AiChat.Api.Agents;
using AiChat.Api.Infrastructure;
using AiChat.Api.Llm;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Chat;

/// <summary>
/// Conversations: many per user on the one agent, whose memory they share. Each has its own transcript, summary, model
/// and title; its messages go through the same turn path as the single-chat endpoints (which act on the default one).
/// </summary>
public static class ConversationApi
{
    public const int MaxTitleChars = 200;

    public static IEndpointRouteBuilder MapConversationApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/conversations").WithTags("Conversations").RequireAuthorization();

        group.MapPost("", CreateAsync);
        group.MapGet("", ListAsync);
        group.MapGet("/{conversationId:guid}", GetAsync);
        group.MapPatch("/{conversationId:guid}", UpdateAsync);
        group.MapDelete("/{conversationId:guid}", DeleteAsync);
        group.MapPost("/{conversationId:guid}/messages", SendMessageAsync)
            .RequireRateLimiting(ChatRateLimits.MessagesPolicy).StreamsEvents(EventStreamEndpoint.WhenAccepted);
        group.MapGet("/{conversationId:guid}/messages", GetMessagesAsync);
        group.MapPost("/{conversationId:guid}/messages/{messageId:guid}/regenerate", RegenerateAsync)
            .RequireRateLimiting(ChatRateLimits.MessagesPolicy).StreamsEvents(EventStreamEndpoint.WhenAccepted);
        group.MapGet("/{conversationId:guid}/messages/{messageId:guid}/alternatives", GetAlternativesAsync);

        return app;
    }

    /// <summary>A new conversation, with a title (else one is generated after its first exchange) and a catalogue model (else the default).</summary>
    public static async Task<Results<Created<ConversationDto>, ProblemHttpResult>> CreateAsync(
        CreateConversationRequest? request, HttpContext context, ConversationStore store, AgentService agents, ModelCatalog models, TimeProvider time, CancellationToken cancellationToken)
    {
        var title = request?.Title;
        if (CheckTitle(title) is { } invalid)
        {
            return invalid;
        }

        if (models.Check(request?.Model) is { } unknown)
        {
            return unknown;
        }

        var userId = context.User.UserId();
        var externalId = await agents.CreateConversationAsync(userId, request?.Model, cancellationToken);
        var now = time.GetUtcNow();
        var conversation = new ConversationRecord
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            Title = title?.Trim(),
            TitleSource = title is null ? null : TitleSources.User,
            Model = request?.Model,
            ExternalId = externalId,
            // Both stores keep microseconds: the answer then carries the instant a read gives back.
            CreatedAt = new DateTimeOffset(now.UtcTicks - (now.UtcTicks % 10), TimeSpan.Zero),
        };
        try
        {
            await store.InsertAsync(conversation, cancellationToken);
        }
        catch when (externalId is not null)
        {
            await agents.DeleteConversationAsync(userId, externalId, CancellationToken.None);
            throw;
        }

        return TypedResults.Created($"/api/v1/conversations/{conversation.Id}", ConversationDto.From(conversation with { ActivityAt = conversation.CreatedAt }, models));
    }

    /// <summary>The user's conversations by last activity, newest first (keyset: a page is stable as others move); archived ones with <c>archived=true</c>.</summary>
    public static async Task<Results<Ok<ConversationPage>, ProblemHttpResult>> ListAsync(
        HttpContext context, ConversationStore store, ModelCatalog models, int? limit, string? before, bool? archived, CancellationToken cancellationToken)
    {
        var size = limit ?? 50;
        if (size is < 1 or > 200)
        {
            return new FieldErrors().Add("limit", "The limit must be between 1 and 200.").ToProblem();
        }

        (DateTimeOffset, Guid)? position = null;
        if (before is not null)
        {
            if (DecodeCursor(before) is not { } decoded)
            {
                return new FieldErrors().Add("before", "The cursor is not one this API returned.").ToProblem();
            }

            position = decoded;
        }

        var page = await store.ListAsync(context.User.UserId(), archived ?? false, position, size + 1, cancellationToken);
        var items = page.Take(size).Select(c => ConversationDto.From(c, models)).ToList();
        return TypedResults.Ok(new ConversationPage(items, page.Count > size ? EncodeCursor(page[size - 1]) : null));
    }

    public static async Task<Results<Ok<ConversationDto>, ProblemHttpResult>> GetAsync(
        Guid conversationId, HttpContext context, ConversationStore store, ModelCatalog models, CancellationToken cancellationToken) =>
        await store.FindAsync(context.User.UserId(), conversationId, cancellationToken) is { } conversation
            ? TypedResults.Ok(ConversationDto.From(conversation, models))
            : NotFound();

    /// <summary>Renames it (the user's title is never replaced by a generated one), changes its model, archives or restores it.</summary>
    public static async Task<Results<Ok<ConversationDto>, ProblemHttpResult>> UpdateAsync(
        Guid conversationId, UpdateConversationRequest request, HttpContext context, ConversationStore store, ModelCatalog models, CancellationToken cancellationToken)
    {
        if (CheckTitle(request.Title) is { } invalid)
        {
            return invalid;
        }

        if (models.Check(request.Model) is { } unknown)
        {
            return unknown;
        }

        var updated = await store.UpdateAsync(context.User.UserId(), conversationId, new ConversationChange(request.Title?.Trim(), request.Model, request.Archived), cancellationToken);
        return updated is null ? NotFound() : TypedResults.Ok(ConversationDto.From(updated, models));
    }

    /// <summary>Deletes it with its messages, turns, events and summary (409 while it answers); the agent's memory stays.</summary>
    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid conversationId, HttpContext context, ConversationStore store, AgentService agents, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        var (outcome, deleted) = await store.DeleteAsync(userId, conversationId, cancellationToken);
        switch (outcome)
        {
            case ConversationDeletion.NotFound:
                return NotFound();
            case ConversationDeletion.Busy:
                return Problems.Of(StatusCodes.Status409Conflict, ChatProblems.ConversationBusy, "This conversation is answering a message; delete it when the turn has ended.");
        }

        await agents.DeleteConversationAsync(userId, deleted!.ExternalId, cancellationToken);
        return TypedResults.NoContent();
    }

    /// <summary>A message to this conversation: exactly the contract of <c>POST /api/v1/chat/message</c>, with 409 <c>conversation_busy</c>.</summary>
    public static Task<IResult> SendMessageAsync(
        Guid conversationId, SendMessageRequest request, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken) =>
        ChatApi.SendAsync(conversationId, request, context, services, cancellationToken);

    public static async Task<Results<Ok<HistoryPage>, ProblemHttpResult>> GetMessagesAsync(
        Guid conversationId, HttpContext context, ConversationStore store, MessageStore messages, int? limit, string? before, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (await store.FindAsync(userId, conversationId, cancellationToken) is null)
        {
            return NotFound();
        }

        return await ChatApi.HistoryPageAsync(userId, conversationId, messages, limit, before, cancellationToken);
    }

    /// <summary>
    /// Answers the conversation's last answer's user message again, in a new turn charged like any other: the same JSON /
    /// event-stream contract and Idempotency-Key as sending a message. The old answer stays as an alternative; only the
    /// last current answer can be regenerated (409 <c>not_last_answer</c>), and not while its turn runs (409 <c>conversation_busy</c>).
    /// </summary>
    public static async Task<IResult> RegenerateAsync(
        Guid conversationId, Guid messageId, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken)
    {
        if (!ChatApi.TryReadIdempotencyKey(context.Request, out var key))
        {
            return ChatApi.InvalidIdempotencyKey();
        }

        var start = await services.Turns.RegenerateAsync(context.User.UserId(), conversationId, messageId, key, cancellationToken);
        return await ChatApi.AnswerStartAsync(start, singleChat: false, context, services);
    }

    /// <summary>The other answers to the same user message as this answer, oldest first (a user message has none).</summary>
    public static async Task<Results<Ok<AlternativesDto>, ProblemHttpResult>> GetAlternativesAsync(
        Guid conversationId, Guid messageId, HttpContext context, ConversationStore store, MessageStore messages, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (await messages.FindAsync(userId, conversationId, messageId, cancellationToken) is not { } message)
        {
            return await store.FindAsync(userId, conversationId, cancellationToken) is null
                ? NotFound()
                : Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such message in this conversation.");
        }

        var others = message.ReplyToId is { } userMessageId && message.Role == "assistant"
            ? await messages.AnswersToAsync(conversationId, userMessageId, message.Id, cancellationToken)
            : [];
        return TypedResults.Ok(new AlternativesDto(others.Select(MessageDto.From).ToList()));
    }

    private static ProblemHttpResult NotFound() => Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such conversation.");

    private static ProblemHttpResult? CheckTitle(string? title) =>
        title is null ? null
        : string.IsNullOrWhiteSpace(title) || title.Trim().Length > MaxTitleChars || title.Any(char.IsControl)
            ? new FieldErrors().Add("title", $"A title has 1 to {MaxTitleChars} printable characters.").ToProblem()
            : null;

    private static string EncodeCursor(ConversationRecord last) =>
        Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"c:{last.ActivityAt.UtcTicks}:{last.Id}"));

    private static (DateTimeOffset, Guid)? DecodeCursor(string cursor)
    {
        if (!Cursor.TryDecode(cursor, out var position) || position.Split(':') is not ["c", var ticks, var id]
            || !long.TryParse(ticks, NumberStyles.None, CultureInfo.InvariantCulture, out var utcTicks)
            || utcTicks > DateTimeOffset.MaxValue.UtcTicks || !Guid.TryParse(id, out var conversationId))
        {
            return null;
        }

        return (new DateTimeOffset(utcTicks, TimeSpan.Zero), conversationId);
    }
}

public sealed record CreateConversationRequest(string? Title, string? Model);

public sealed record UpdateConversationRequest(string? Title, string? Model, bool? Archived);

public sealed record ConversationDto(
    Guid Id, string? Title, string Model, bool Archived, bool IsDefault, DateTimeOffset CreatedAt, DateTimeOffset? LastMessageAt, int MessageCount)
{
    /// <summary>The conversation as shown: its model is the catalogue's default when it names none.</summary>
    public static ConversationDto From(ConversationRecord conversation, ModelCatalog models) => new(
        conversation.Id, conversation.Title, conversation.Model ?? models.Default.Id, conversation.Archived, conversation.IsDefault,
        conversation.CreatedAt, conversation.LastMessageAt, conversation.MessageCount);
}

public sealed record ConversationPage(IReadOnlyList<ConversationDto> Conversations, string? NextCursor);

public sealed record AlternativesDto(IReadOnlyList<MessageDto> Alternatives);
