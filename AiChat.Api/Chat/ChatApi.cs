using System.Globalization;
using System.Text.Json.Serialization;
using AiChat.Api.Agents;
using AiChat.Api.Billing;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

public static class ChatApi
{
    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/chat").WithTags("Chat").RequireAuthorization();

        group.MapPost("/message", SendMessageAsync).RequireRateLimiting(ChatRateLimits.MessagesPolicy).StreamsEvents(EventStreamEndpoint.WhenAccepted);
        group.MapGet("/turns/{turnId:guid}/events", StreamEventsAsync).StreamsEvents(EventStreamEndpoint.Always);
        group.MapPost("/turns/{turnId:guid}/cancel", CancelAsync);
        group.MapGet("/history", GetHistoryAsync);
        group.MapDelete("/history", DeleteHistoryAsync);

        return app;
    }

    /// <summary>
    /// Sends a message: the user's message is stored before the model is called, the turn runs on the server, and the
    /// answer comes back as JSON (<c>Accept: application/json</c>) or as the event stream (<c>Accept: text/event-stream</c>).
    /// A message while the agent answers another gets 409 <c>agent_busy</c>. The same <c>Idempotency-Key</c> attaches to the same turn.
    /// </summary>
    public static Task<IResult> SendMessageAsync(SendMessageRequest request, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken) =>
        SendAsync(null, request, context, services, cancellationToken);

    /// <summary>
    /// A message to a conversation (null: the default one, and a busy conversation is <c>agent_busy</c> as it always
    /// was; else <c>conversation_busy</c>): checked, started as a turn, answered as JSON or as the event stream.
    /// </summary>
    internal static async Task<IResult> SendAsync(Guid? conversationId, SendMessageRequest request, HttpContext context, ChatServices services, CancellationToken cancellationToken)
    {
        var options = services.Options.Value;
        if (string.IsNullOrWhiteSpace(request.Content))
        {
            return new FieldErrors().Add("content", "The message must not be empty.").ToProblem();
        }

        if (request.Content.Length > options.MaxMessageChars)
        {
            return Problems.Of(StatusCodes.Status413PayloadTooLarge, ChatProblems.MessageTooLong,
                $"A message has at most {options.MaxMessageChars} characters (this one has {request.Content.Length}).",
                new Dictionary<string, object?> { ["max_chars"] = options.MaxMessageChars });
        }

        if (!TryReadIdempotencyKey(context.Request, out var key))
        {
            return InvalidIdempotencyKey();
        }

        var start = await services.Turns.StartAsync(context.User.UserId(), conversationId, request.Content, key, cancellationToken);
        return await AnswerStartAsync(start, conversationId is null, context, services);
    }

    /// <summary>The request's <c>Idempotency-Key</c> (null when it sends none); false when the key is not one this API takes.</summary>
    internal static bool TryReadIdempotencyKey(HttpRequest request, out string? key)
    {
        var value = request.Headers["Idempotency-Key"].ToString();
        key = value.Length > 0 ? value : null;
        return value.Length <= 200 && !value.Any(char.IsControl);
    }

    internal static ProblemHttpResult InvalidIdempotencyKey() =>
        new FieldErrors().Add("Idempotency-Key", "The key has at most 200 printable characters.").ToProblem();

    /// <summary>The answer to asking for a turn, whichever way it came out (the same for a message and a regenerate).</summary>
    internal static async Task<IResult> AnswerStartAsync(TurnStart start, bool singleChat, HttpContext context, ChatServices services)
    {
        switch (start)
        {
            case TurnStart.Started { Turn: var turn }:
                return await AnswerAsync(turn, context, services);
            case TurnStart.Existing { Turn: var turn }:
                return await AnswerAsync(turn, context, services);
            case TurnStart.Busy when singleChat:
                return Problems.Of(StatusCodes.Status409Conflict, AgentProblems.AgentBusy, "The agent is answering another message. Send this one when that turn has ended.");
            case TurnStart.Busy:
                return Problems.Of(StatusCodes.Status409Conflict, ChatProblems.ConversationBusy, "This conversation is answering another message. Send this one when that turn has ended.");
            case TurnStart.TooManyTurns { Max: var max }:
                context.Response.Headers.RetryAfter = "5";
                return Problems.Of(StatusCodes.Status429TooManyRequests, ChatProblems.TooManyTurns,
                    $"You have {max} answers running in other conversations; send this one when one of them has ended. Nothing was stored.",
                    new Dictionary<string, object?> { ["max_concurrent_turns"] = max, ["retry_after_seconds"] = 5 });
            case TurnStart.NotFound:
                return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such conversation.");
            case TurnStart.MessageNotFound:
                return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such message in this conversation.");
            case TurnStart.NotLastAnswer:
                return Problems.Of(StatusCodes.Status409Conflict, ChatProblems.NotLastAnswer,
                    "Only the conversation's last answer can be regenerated (not a user message, an older answer, or one already replaced). Nothing was stored.");
            case TurnStart.RegenerateUnsupported { Runtime: var runtime }:
                return Problems.Of(StatusCodes.Status422UnprocessableEntity, ChatProblems.RegenerateUnsupported,
                    $"The agent's runtime ({runtime}) keeps its own history and cannot answer an earlier message again. Nothing was stored.",
                    new Dictionary<string, object?> { ["runtime"] = runtime });
            case TurnStart.UpstreamUnavailable { RetryAfterSeconds: var seconds }:
                return Problems.UpstreamUnavailable(context, seconds);
            case TurnStart.QueueFull:
                context.Response.Headers.RetryAfter = "5";
                return Problems.Of(StatusCodes.Status503ServiceUnavailable, ChatProblems.ServerBusy, "Too many turns are waiting; nothing was stored. Try again shortly.",
                    new Dictionary<string, object?> { ["retry_after_seconds"] = 5 });
            case TurnStart.KeyReused:
                return Problems.Of(StatusCodes.Status422UnprocessableEntity, ChatProblems.IdempotencyKeyReused, "This Idempotency-Key was used for a different message.");
            default:
                throw new InvalidOperationException($"Unexpected turn start {start}.");
        }
    }

    public static async Task<IResult> StreamEventsAsync(Guid turnId, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken)
    {
        var raw = context.Request.Headers["Last-Event-ID"].ToString();
        if (raw.Length == 0)
        {
            raw = context.Request.Query["last_event_id"].ToString();
        }

        var after = 0;
        if (raw.Length > 0 && (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out after) || after < 0))
        {
            return new FieldErrors().Add("Last-Event-ID", "The last event id is a whole number from a previous event.").ToProblem();
        }

        var turn = await services.Store.FindAsync(turnId, context.User.UserId(), cancellationToken);
        if (turn is null)
        {
            return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such turn.");
        }

        if (turn.IsFinished && (await services.Store.ReadEventsAsync(turn.Id, 0, cancellationToken)).Count == 0)
        {
            return Problems.Of(StatusCodes.Status410Gone, ChatProblems.EventsExpired, "This turn's events are no longer kept; its messages are in the history.");
        }

        return new TurnStreamResult(turn, after, services.Follower);
    }

    public static async Task<Results<Accepted<CancelResponse>, ProblemHttpResult>> CancelAsync(Guid turnId, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (!await services.Store.RequestCancelAsync(turnId, userId, cancellationToken))
        {
            return await services.Store.FindAsync(turnId, userId, cancellationToken) is null
                ? Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such turn.")
                : Problems.Of(StatusCodes.Status409Conflict, ChatProblems.TurnFinished, "The turn has already ended.");
        }

        services.Queue.Cancel(turnId);
        return TypedResults.Accepted($"/api/v1/chat/turns/{turnId}/events", new CancelResponse(turnId, "cancelling"));
    }

    public static Task<Results<Ok<HistoryPage>, ProblemHttpResult>> GetHistoryAsync(
        HttpContext context, MessageStore messages, int? limit, string? before, CancellationToken cancellationToken) =>
        HistoryPageAsync(context.User.UserId(), null, messages, limit, before, cancellationToken);

    /// <summary>A page of a conversation's history (null: the default one), newest first, keyset by the cursor.</summary>
    internal static async Task<Results<Ok<HistoryPage>, ProblemHttpResult>> HistoryPageAsync(
        Guid userId, Guid? conversationId, MessageStore messages, int? limit, string? before, CancellationToken cancellationToken)
    {
        var size = limit ?? 50;
        if (size is < 1 or > 200)
        {
            return new FieldErrors().Add("limit", "The limit must be between 1 and 200.").ToProblem();
        }

        var beforeSeq = long.MaxValue;
        if (before is not null && !(Cursor.TryDecode(before, out var position) && position.StartsWith("m:", StringComparison.Ordinal)
            && long.TryParse(position[2..], NumberStyles.None, CultureInfo.InvariantCulture, out beforeSeq) && beforeSeq > 0))
        {
            return new FieldErrors().Add("before", "The cursor is not one this API returned.").ToProblem();
        }

        var page = await messages.HistoryAsync(userId, conversationId, beforeSeq, size + 1, cancellationToken);
        var items = page.Take(size).Select(MessageDto.From).ToList();
        return TypedResults.Ok(new HistoryPage(items, page.Count > size ? Cursor.Encode($"m:{page[size - 1].Seq}") : null));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteHistoryAsync(
        HttpContext context, ConversationStore conversations, AgentService agents, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (await conversations.EmptyDefaultAsync(userId, cancellationToken) == ConversationDeletion.Busy)
        {
            return Problems.Of(StatusCodes.Status409Conflict, AgentProblems.AgentBusy, "A turn is running; delete the history when it has ended.");
        }

        if (await agents.FindAsync(userId, cancellationToken) is { Runtime: AgentRuntimes.Letta } agent)
        {
            // Letta keeps its own copy of the default conversation: it forgets it too.
            await agents.RuntimeFor(agent).ResetAsync(agent, ResetScope.Conversation, agents.Defaults(), cancellationToken);
        }

        return TypedResults.NoContent();
    }

    /// <summary>Answers for a stored turn: its event stream, or (JSON) its result once it has ended, read from the turn's row.</summary>
    internal static async Task<IResult> AnswerAsync(TurnRecord turn, HttpContext context, ChatServices services)
    {
        if (WantsEventStream(context.Request))
        {
            return new TurnStreamResult(turn, 0, services.Follower);
        }

        // The JSON answer waits for the turn; if the client goes away meanwhile, the turn still runs to its end.
        var result = await services.Follower.WaitForEndAsync(turn, context.RequestAborted);
        if (result is { Turn.Status: TurnStatus.Completed, UserMessage: { } user, AssistantMessage: { } assistant })
        {
            var dto = MessageDto.From(assistant);
            var budget = result.Turn.BudgetRemainingNanousd is { } remaining ? new BudgetSummary(PriceTable.ToUsd(remaining)) : null;
            return TypedResults.Ok(new TurnResult(turn.Id, MessageDto.From(user), dto, dto.Usage, budget));
        }

        var failure = result?.Turn.Failure ?? new TurnFailure(StatusCodes.Status500InternalServerError, ProblemCodes.InternalError, "The turn failed.");
        var extensions = new Dictionary<string, object?>
        {
            ["turn_id"] = turn.Id,
            ["user_message_id"] = turn.UserMessageId,
            ["assistant_message_id"] = turn.AssistantMessageId,
        };
        foreach (var (name, value) in failure.Figures ?? new Dictionary<string, object?>())
        {
            extensions[name] = value;
        }

        Problems.SetRetryAfter(context, failure.Figures);
        return Problems.Of(failure.Status, failure.Code, failure.Detail, extensions);
    }

    internal static bool WantsEventStream(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(accept => accept.MediaType.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase));
}

public sealed record ChatServices(TurnService Turns, TurnStore Store, TurnQueue Queue, TurnFollower Follower, IOptions<ChatOptions> Options);

public sealed record SendMessageRequest(string? Content);

public sealed record UsageDto(int PromptTokens, int CompletionTokens, int TotalTokens, decimal? CostUsd);

/// <summary>
/// A message on the wire. <paramref name="Alternatives"/>: in a history page, an answer says how many other answers its
/// user message has (the ones a regenerate replaced, listed by the alternatives endpoint); absent everywhere else.
/// </summary>
public sealed record MessageDto(
    Guid Id, string Role, string Content, string Status, UsageDto? Usage, DateTimeOffset CreatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Alternatives = null)
{
    public static MessageDto From(MessageRecord message) => new(
        message.Id,
        message.Role,
        message.Content,
        message.Status,
        message.PromptTokens is null ? null : new UsageDto(message.PromptTokens.Value, message.CompletionTokens ?? 0, message.PromptTokens.Value + (message.CompletionTokens ?? 0), message.CostNanousd is { } cost ? PriceTable.ToUsd(cost) : null),
        message.CreatedAt,
        message.Alternatives);
}

public sealed record BudgetSummary(decimal RemainingUsd);

public sealed record TurnResult(Guid TurnId, MessageDto UserMessage, MessageDto AssistantMessage, UsageDto? Usage, BudgetSummary? Budget);

public sealed record HistoryPage(IReadOnlyList<MessageDto> Messages, string? NextCursor);

public sealed record CancelResponse(Guid TurnId, string Status);
