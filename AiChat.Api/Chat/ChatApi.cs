using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

public static class ChatApi
{
    public const string MessageTooLong = "message_too_long";
    public const string IdempotencyKeyReused = "idempotency_key_reused";
    public const string ServerBusy = "server_busy";
    public const string EventsExpired = "events_expired";
    public const string TurnFinished = "turn_already_finished";

    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/chat").WithTags("Chat").RequireAuthorization();

        group.MapPost("/message", SendMessageAsync);
        group.MapGet("/turns/{turnId:guid}/events", StreamEventsAsync);
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
    public static async Task<IResult> SendMessageAsync(SendMessageRequest request, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken)
    {
        var options = services.Options.Value;
        if (string.IsNullOrWhiteSpace(request.Content))
        {
            return new FieldErrors().Add("content", "The message must not be empty.").ToProblem();
        }

        if (request.Content.Length > options.MaxMessageChars)
        {
            return Problems.Of(StatusCodes.Status413PayloadTooLarge, MessageTooLong,
                $"A message has at most {options.MaxMessageChars} characters (this one has {request.Content.Length}).",
                new Dictionary<string, object?> { ["max_chars"] = options.MaxMessageChars });
        }

        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 200 || key.Any(char.IsControl))
        {
            return new FieldErrors().Add("Idempotency-Key", "The key has at most 200 printable characters.").ToProblem();
        }

        var userId = context.User.UserId();
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(request.Content)));
        if (key.Length > 0 && await services.Store.FindByIdempotencyKeyAsync(userId, key, cancellationToken) is { } earlier)
        {
            return earlier.RequestHash == hash ? await AnswerAsync(earlier, context, services) : KeyReused();
        }

        var agent = await services.Agents.GetAsync(userId, cancellationToken);
        if (!services.Executor.TryReserve())
        {
            context.Response.Headers.RetryAfter = "5";
            return Problems.Of(StatusCodes.Status503ServiceUnavailable, ServerBusy, "Too many turns are waiting; nothing was stored. Try again shortly.",
                new Dictionary<string, object?> { ["retry_after_seconds"] = 5 });
        }

        var turn = new TurnRecord
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            AgentId = agent.Id,
            Status = TurnStatus.Running,
            IdempotencyKey = key.Length > 0 ? key : null,
            RequestHash = hash,
            UserMessageId = Guid.CreateVersion7(),
            AssistantMessageId = Guid.CreateVersion7(),
            CreatedAt = Microseconds(services.Time.GetUtcNow()),
            LastEventSeq = 1,
        };
        var started = TurnEvents.Create(1, TurnEvents.Started, new { turn_id = turn.Id, user_message_id = turn.UserMessageId, assistant_message_id = turn.AssistantMessageId });
        TurnRecord? created;
        try
        {
            created = await services.Store.CreateAsync(turn, request.Content, started, cancellationToken);
        }
        catch (TurnConflictException)
        {
            services.Executor.Unreserve();
            return Problems.Of(StatusCodes.Status409Conflict, AgentApi.AgentBusy, "The agent is answering another message. Send this one when that turn has ended.");
        }
        catch
        {
            services.Executor.Unreserve();
            throw;
        }

        if (created is null)
        {
            // Another request with the same key stored its turn first: attach to that one.
            services.Executor.Unreserve();
            var winner = await services.Store.FindByIdempotencyKeyAsync(userId, key, cancellationToken);
            return winner?.RequestHash == hash ? await AnswerAsync(winner, context, services) : KeyReused();
        }

        services.Executor.Enqueue(new TurnWork(created, request.Content));
        return await AnswerAsync(created, context, services);
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
            return Problems.Of(StatusCodes.Status410Gone, EventsExpired, "This turn's events are no longer kept; its messages are in the history.");
        }

        return new TurnStreamResult(turn, after, services.Follower);
    }

    public static async Task<Results<Accepted<CancelResponse>, ProblemHttpResult>> CancelAsync(Guid turnId, HttpContext context, [AsParameters] ChatServices services, CancellationToken cancellationToken)
    {
        var turn = await services.Store.FindAsync(turnId, context.User.UserId(), cancellationToken);
        if (turn is null)
        {
            return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such turn.");
        }

        if (!await services.Store.RequestCancelAsync(turnId, turn.UserId, cancellationToken))
        {
            return Problems.Of(StatusCodes.Status409Conflict, TurnFinished, "The turn has already ended.");
        }

        services.Executor.Cancel(turnId);
        return TypedResults.Accepted($"/api/v1/chat/turns/{turnId}/events", new CancelResponse(turnId, "cancelling"));
    }

    public static async Task<Results<Ok<HistoryPage>, ProblemHttpResult>> GetHistoryAsync(
        HttpContext context, TurnStore store, int? limit, string? before, CancellationToken cancellationToken)
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

        var page = await store.HistoryAsync(context.User.UserId(), beforeSeq, size + 1, cancellationToken);
        var messages = page.Take(size).Select(MessageDto.From).ToList();
        return TypedResults.Ok(new HistoryPage(messages, page.Count > size ? Cursor.Encode($"m:{page[size - 1].Seq}") : null));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteHistoryAsync(
        HttpContext context, TurnStore store, AgentService agents, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (!await store.DeleteHistoryAsync(userId, cancellationToken))
        {
            return Problems.Of(StatusCodes.Status409Conflict, AgentApi.AgentBusy, "A turn is running; delete the history when it has ended.");
        }

        if (await agents.FindAsync(userId, cancellationToken) is { } agent)
        {
            // The agent forgets the conversation too (its summary would otherwise keep what was deleted).
            await agents.RuntimeFor(agent).ResetAsync(agent, ResetScope.Conversation, agents.Defaults(), cancellationToken);
        }

        return TypedResults.NoContent();
    }

    /// <summary>Answers for a stored turn: its event stream, or (JSON) its result once it has ended.</summary>
    private static async Task<IResult> AnswerAsync(TurnRecord turn, HttpContext context, ChatServices services)
    {
        if (WantsEventStream(context.Request))
        {
            return new TurnStreamResult(turn, 0, services.Follower);
        }

        // The JSON answer waits for the turn; if the client goes away meanwhile, the turn still runs to its end.
        StoredEvent? last = null;
        await services.Follower.FollowAsync(turn, 0, stored => { last = stored; return Task.CompletedTask; }, () => Task.CompletedTask, context.RequestAborted);
        if (last?.Event == TurnEvents.Completed)
        {
            var user = await services.Store.FindMessageAsync(turn.UserMessageId, context.RequestAborted);
            var assistant = await services.Store.FindMessageAsync(turn.AssistantMessageId, context.RequestAborted);
            var dto = MessageDto.From(assistant!);
            var budget = await services.Ledger.GetStateAsync(turn.UserId, context.RequestAborted);
            return TypedResults.Ok(new TurnResult(turn.Id, MessageDto.From(user!), dto, dto.Usage, budget is null ? null : new BudgetSummary(Billing.PriceTable.ToUsd(budget.Remaining))));
        }

        var problem = last is null ? null : JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(last.Data);
        var status = problem?.TryGetValue("status", out var value) == true ? value.GetInt32() : StatusCodes.Status500InternalServerError;
        var code = problem?.TryGetValue("code", out var c) == true ? c.GetString()! : ProblemCodes.InternalError;
        var detail = problem?.TryGetValue("detail", out var d) == true ? d.GetString()! : "The turn failed.";
        var extensions = new Dictionary<string, object?>
        {
            ["turn_id"] = turn.Id,
            ["user_message_id"] = turn.UserMessageId,
            ["assistant_message_id"] = turn.AssistantMessageId,
        };
        foreach (var (key, element) in problem ?? [])
        {
            if (key is not ("type" or "title" or "status" or "detail" or "code" or "turn_id" or "instance"))
            {
                extensions[key] = element;
            }
        }

        return Problems.Of(status, code, detail, extensions);
    }

    // Both stores keep microseconds; the events then carry the same instants as the history.
    private static DateTimeOffset Microseconds(DateTimeOffset instant) => new(instant.UtcTicks - instant.UtcTicks % 10, TimeSpan.Zero);

    private static bool WantsEventStream(HttpRequest request) =>
        request.GetTypedHeaders().Accept.Any(accept => accept.MediaType.Equals("text/event-stream", StringComparison.OrdinalIgnoreCase));

    private static ProblemHttpResult KeyReused() =>
        Problems.Of(StatusCodes.Status422UnprocessableEntity, IdempotencyKeyReused, "This Idempotency-Key was used for a different message.");

    /// <summary>Writes a turn's events as Server-Sent Events, with a comment line whenever the stream is quiet for too long.</summary>
    private sealed class TurnStreamResult(TurnRecord turn, int afterSeq, TurnFollower follower) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            var response = context.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            response.Headers["X-Turn-Id"] = turn.Id.ToString();
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await response.Body.FlushAsync(context.RequestAborted);

            try
            {
                await follower.FollowAsync(
                    turn,
                    afterSeq,
                    async stored =>
                    {
                        await response.WriteAsync($"id: {stored.Seq}\nevent: {stored.Event}\ndata: {stored.Data}\n\n", context.RequestAborted);
                        await response.Body.FlushAsync(context.RequestAborted);
                    },
                    async () =>
                    {
                        await response.WriteAsync(": keep-alive\n\n", context.RequestAborted);
                        await response.Body.FlushAsync(context.RequestAborted);
                    },
                    context.RequestAborted);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client left; the turn goes on and can be resumed with Last-Event-ID.
            }
        }
    }
}

public sealed record ChatServices(TurnStore Store, TurnExecutor Executor, TurnFollower Follower, AgentService Agents, Billing.Ledger Ledger, IOptions<ChatOptions> Options, TimeProvider Time);

public sealed record SendMessageRequest(string? Content);

public sealed record UsageDto(int PromptTokens, int CompletionTokens, int TotalTokens, decimal? CostUsd);

public sealed record MessageDto(Guid Id, string Role, string Content, string Status, UsageDto? Usage, DateTimeOffset CreatedAt)
{
    public static MessageDto From(MessageRecord message) => new(
        message.Id,
        message.Role,
        message.Content,
        message.Status,
        message.PromptTokens is null ? null : new UsageDto(message.PromptTokens.Value, message.CompletionTokens ?? 0, message.PromptTokens.Value + (message.CompletionTokens ?? 0), message.CostNanousd / 1_000_000_000m),
        message.CreatedAt);
}

public sealed record BudgetSummary(decimal RemainingUsd);

public sealed record TurnResult(Guid TurnId, MessageDto UserMessage, MessageDto AssistantMessage, UsageDto? Usage, BudgetSummary? Budget);

public sealed record HistoryPage(IReadOnlyList<MessageDto> Messages, string? NextCursor);

public sealed record CancelResponse(Guid TurnId, string Status);
