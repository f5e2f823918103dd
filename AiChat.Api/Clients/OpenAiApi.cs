using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using AiChat.Api.Agents;
using AiChat.Api.Chat;
using AiChat.Api.Infrastructure;
using AiChat.Api.Llm;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Clients;

/// <summary>
/// The OpenAI-compatible endpoint at <c>/v1</c> (through the gateway): <c>GET /v1/models</c> lists the catalogue and
/// <c>POST /v1/chat/completions</c> makes the request's last user message a turn of the user's agent, on the same path as
/// <c>POST /api/v1/conversations/{id}/messages</c> (memory, server-side tools, budget, stored history), answered in
/// OpenAI's wire format, streamed or not. Authenticated with a personal API key (or an access token).
/// </summary>
/// <remarks>
/// Which conversation: the one named by the <c>X-AiChat-Conversation</c> header or <c>metadata.conversation_id</c>;
/// else the one whose stored transcript is exactly the messages sent before the last one (a stateless client resending
/// the whole history stays in one conversation and stores each message once); else a new conversation.
/// </remarks>
public static class OpenAiApi
{
    public const string ConversationHeader = "X-AiChat-Conversation";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // JSON for API clients, never HTML: apostrophes and quotes stay as they are.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static bool IsOpenAiPath(PathString path) => path.StartsWithSegments("/v1", StringComparison.OrdinalIgnoreCase);

    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1").WithTags("OpenAI-compatible").RequireAuthorization();

        group.MapGet("/models", ListModels);
        group.MapPost("/chat/completions", CompleteAsync).RequireRateLimiting(ChatRateLimits.MessagesPolicy);

        return app;
    }

    public static IResult ListModels(ModelCatalog catalog) => TypedResults.Json(
        new OpenAiModelList("list", catalog.Models.Select(model => new OpenAiModel(model.Id, "model", 0, "aichat")).ToList()), Json);

    public static async Task<IResult> CompleteAsync(ChatCompletionRequest? request, HttpContext context, [AsParameters] OpenAiServices services, CancellationToken cancellationToken)
    {
        var read = Read(request, services.Chat.Value.MaxMessageChars);
        if (read.Error is { } invalid)
        {
            return invalid;
        }

        var (transcript, content) = read.Exchange!.Value;
        var model = services.Models.Find(request!.Model!);
        if (model is null)
        {
            return OpenAiErrors.Of(StatusCodes.Status404NotFound, OpenAiErrors.ModelNotFound,
                $"The model `{request.Model}` does not exist. GET /v1/models lists the models of this server.", "model");
        }

        var userId = context.User.UserId();
        if (await services.Agents.UpstreamRetryAfterAsync(userId, cancellationToken) is { } retryAfter)
        {
            return Refusal(new TurnStart.UpstreamUnavailable(retryAfter), context); // before a conversation is made for it
        }

        var named = NamedConversation(context.Request, request);
        if (named is { Valid: false })
        {
            return OpenAiErrors.Of(StatusCodes.Status400BadRequest, ProblemCodes.ValidationFailed,
                $"The conversation ({ConversationHeader} or metadata.conversation_id) is a conversation id.", "metadata.conversation_id");
        }

        var priorHash = HashOf(transcript);
        ConversationRecord? conversation = null;
        if (named is { Id: { } namedId })
        {
            conversation = await services.Conversations.FindAsync(userId, namedId, cancellationToken);
            if (conversation is null)
            {
                return OpenAiErrors.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such conversation.", "metadata.conversation_id");
            }
        }
        else if (transcript.Count > 0 && await services.Threads.FindAsync(userId, priorHash, cancellationToken) is { } seen
            // Where the conversation stands now, or an earlier point of it for a request sent before (a retry); an
            // earlier point with a new message is a branch of the history, which starts a conversation of its own.
            && (seen.Latest || await services.TurnStore.FindByIdempotencyKeyAsync(userId, KeyFor(seen.ConversationId, priorHash, content), cancellationToken) is not null))
        {
            conversation = await services.Conversations.FindAsync(userId, seen.ConversationId, cancellationToken);
        }

        conversation ??= await NewConversationAsync(userId, model, services, cancellationToken);
        if ((conversation.Model ?? services.Models.Default.Id) != model.Id)
        {
            conversation = await services.Conversations.UpdateAsync(userId, conversation.Id, new ConversationChange(null, model.Id, null), cancellationToken) ?? conversation;
        }

        // The same request sent again (a retry) attaches to its turn: no second message. A client that sends only its
        // newest message (no history) names the conversation, and its place in it tells repeats apart.
        var key = KeyFor(conversation.Id, transcript.Count > 0 ? priorHash : $"count:{conversation.MessageCount}", content);
        var start = await services.Turns.StartAsync(userId, conversation.Id, content, key, cancellationToken);
        context.Response.Headers[ConversationHeader] = conversation.Id.ToString();
        var turn = start switch
        {
            TurnStart.Started started => started.Turn,
            TurnStart.Existing existing => existing.Turn,
            _ => null,
        };
        if (turn is null)
        {
            return Refusal(start, context);
        }

        // A client that names its conversation needs no thread: only the others' transcripts are remembered.
        var exchange = new Exchange(userId, conversation.Id, transcript, content, turn, model.Id, named is null, context.RequestAborted);
        return request.Stream == true
            ? new CompletionStreamResult(exchange, request.StreamOptions?.IncludeUsage == true, services)
            : await AnswerAsync(exchange, services);
    }

    /// <summary>The whole answer once the turn has ended, as a chat.completion (or the turn's failure as an OpenAI error).</summary>
    private static async Task<IResult> AnswerAsync(Exchange exchange, OpenAiServices services)
    {
        TurnResultRow? result;
        try
        {
            result = await services.Follower.WaitForEndAsync(exchange.Turn, exchange.Aborted);
        }
        catch (OperationCanceledException) when (exchange.Aborted.IsCancellationRequested)
        {
            // The client left: the turn still runs to its end, and its answer still names the conversation.
            if (await services.Follower.WaitForEndAsync(exchange.Turn, CancellationToken.None) is { Turn.Status: TurnStatus.Completed, AssistantMessage: { } late })
            {
                await RememberAsync(exchange, late.Content, services);
            }

            throw;
        }

        if (result is { Turn.Status: TurnStatus.Completed, AssistantMessage: { } assistant })
        {
            await RememberAsync(exchange, assistant.Content, services);
            return TypedResults.Json(new ChatCompletion(
                CompletionId(exchange.Turn), "chat.completion", Created(exchange.Turn), exchange.Model,
                [new CompletionChoice(0, new CompletionMessage("assistant", assistant.Content), "stop")],
                UsageOf(assistant.PromptTokens, assistant.CompletionTokens)), Json);
        }

        return Failure(result?.Turn.Failure);
    }

    /// <summary>The Idempotency-Key of a request: its conversation, its place there (the transcript before it), its message.</summary>
    private static string KeyFor(Guid conversationId, string position, string content) => "v1:" + Hash($"{conversationId}\n{position}\n{content}");

    /// <summary>After an answer: the transcript the client will resend next time names this conversation.</summary>
    internal static Task RememberAsync(Exchange exchange, string answer, OpenAiServices services) => !exchange.Stateless
        ? Task.CompletedTask
        : services.Threads.AddAsync(exchange.UserId, exchange.ConversationId,
            HashOf([.. exchange.Transcript, new("user", exchange.Content), new("assistant", answer)]), CancellationToken.None);

    internal static IResult Failure(TurnFailure? failure)
    {
        failure ??= new TurnFailure(StatusCodes.Status500InternalServerError, ProblemCodes.InternalError, "The turn failed.");
        return OpenAiErrors.Of(failure.Status, failure.Code, failure.Detail);
    }

    internal static string CompletionId(TurnRecord turn) => $"chatcmpl-{turn.Id:N}";

    internal static long Created(TurnRecord turn) => turn.CreatedAt.ToUnixTimeSeconds();

    internal static CompletionUsage? UsageOf(int? prompt, int? completion) =>
        prompt is null ? null : new CompletionUsage(prompt.Value, completion ?? 0, prompt.Value + (completion ?? 0));

    private static IResult Refusal(TurnStart start, HttpContext context)
    {
        switch (start)
        {
            case TurnStart.Busy:
                return OpenAiErrors.Of(StatusCodes.Status409Conflict, ChatProblems.ConversationBusy,
                    "This conversation is answering another message. Send this one when that answer has ended.");
            case TurnStart.TooManyTurns { Max: var max }:
                context.Response.Headers.RetryAfter = "5";
                return OpenAiErrors.Of(StatusCodes.Status429TooManyRequests, ChatProblems.TooManyTurns,
                    $"You have {max} answers running in other conversations; send this one when one of them has ended.");
            case TurnStart.UpstreamUnavailable { RetryAfterSeconds: var seconds }:
                context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return OpenAiErrors.Of(StatusCodes.Status503ServiceUnavailable, ProblemCodes.UpstreamUnavailable,
                    $"A service this answer needs is failing, so AiChat stopped calling it for a while. Try again in {seconds} s.");
            case TurnStart.QueueFull:
                context.Response.Headers.RetryAfter = "5";
                return OpenAiErrors.Of(StatusCodes.Status503ServiceUnavailable, ChatProblems.ServerBusy, "Too many answers are waiting. Try again shortly.");
            case TurnStart.NotFound:
                return OpenAiErrors.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such conversation.");
            default:
                return OpenAiErrors.Of(StatusCodes.Status409Conflict, ChatProblems.IdempotencyKeyReused, "This request conflicts with an earlier one.");
        }
    }

    private static async Task<ConversationRecord> NewConversationAsync(Guid userId, CatalogModel model, OpenAiServices services, CancellationToken cancellationToken)
    {
        var modelId = model.IsDefault ? null : model.Id;
        var externalId = await services.Agents.CreateConversationAsync(userId, modelId, cancellationToken);
        var now = services.Time.GetUtcNow();
        var conversation = new ConversationRecord
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            Model = modelId,
            ExternalId = externalId,
            CreatedAt = new DateTimeOffset(now.UtcTicks - (now.UtcTicks % 10), TimeSpan.Zero),
        };
        try
        {
            await services.Conversations.InsertAsync(conversation, cancellationToken);
        }
        catch when (externalId is not null)
        {
            await services.Agents.DeleteConversationAsync(userId, externalId, CancellationToken.None);
            throw;
        }

        return conversation;
    }

    /// <summary>The conversation a request names, if any; Valid is false when it names something that is not an id.</summary>
    private static (bool Valid, Guid? Id)? NamedConversation(HttpRequest http, ChatCompletionRequest request)
    {
        var raw = http.Headers[ConversationHeader].ToString();
        if (raw.Length == 0 && request.Metadata is { ValueKind: JsonValueKind.Object } metadata
            && metadata.TryGetProperty("conversation_id", out var id))
        {
            raw = id.ValueKind == JsonValueKind.String ? id.GetString() ?? "" : id.GetRawText();
        }

        return raw.Length == 0 ? null : Guid.TryParse(raw, out var parsed) ? (true, parsed) : (false, null);
    }

    /// <summary>
    /// Checks a request and reads the conversation it carries: the user and assistant messages before the last one (system,
    /// developer and tool messages are the client's own business: the agent has its persona and runs its tools itself) and
    /// the last one, which must be the user's.
    /// </summary>
    private static (IResult? Error, (List<TranscriptLine> Transcript, string Content)? Exchange) Read(ChatCompletionRequest? request, int maxChars)
    {
        static (IResult?, (List<TranscriptLine>, string)?) Invalid(string message, string param) =>
            (OpenAiErrors.Of(StatusCodes.Status400BadRequest, ProblemCodes.ValidationFailed, message, param), null);

        if (request is null)
        {
            return Invalid("The body is a chat completion request.", "messages");
        }

        if (string.IsNullOrWhiteSpace(request.Model))
        {
            return Invalid("`model` is required: one of GET /v1/models.", "model");
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            return Invalid("`messages` must have at least one message.", "messages");
        }

        if (request.N is > 1)
        {
            return Invalid("Only one choice (n = 1) is answered: a turn has one answer.", "n");
        }

        var transcript = new List<TranscriptLine>();
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Role is not ("system" or "developer" or "user" or "assistant" or "tool"))
            {
                return Invalid($"messages[{i}].role must be system, developer, user, assistant or tool.", $"messages[{i}].role");
            }

            if (TextOf(message.Content) is not { } text)
            {
                return Invalid($"messages[{i}].content must be a string or an array of content parts.", $"messages[{i}].content");
            }

            if (message.Role is "user" or "assistant" && text.Trim().Length > 0)
            {
                transcript.Add(new TranscriptLine(message.Role, text.Trim()));
            }
        }

        if (messages[^1] is not { Role: "user" } || transcript is not [.., { Role: "user" } last])
        {
            return Invalid("The last message must be the user's, with text.", $"messages[{messages.Count - 1}]");
        }

        if (last.Text.Length > maxChars)
        {
            return Invalid($"A message has at most {maxChars} characters (this one has {last.Text.Length}).", $"messages[{messages.Count - 1}].content");
        }

        return (null, (transcript[..^1], last.Text));
    }

    /// <summary>A message's text: a string, or the text parts of an array (other parts are left out); null when it is neither.</summary>
    private static string? TextOf(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString(),
        JsonValueKind.Null or JsonValueKind.Undefined => "",
        JsonValueKind.Array => string.Concat(content.EnumerateArray()
            .Where(part => part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueEquals("text") && part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            .Select(part => part.GetProperty("text").GetString())),
        _ => null,
    };

    /// <summary>A transcript as the conversation's key: each line's role and trimmed text, in order.</summary>
    internal static string HashOf(IReadOnlyList<TranscriptLine> transcript) =>
        Hash(string.Join('\u001e', transcript.Select(line => $"{line.Role}\u001f{line.Text.Trim()}")));

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}

public sealed record OpenAiServices(
    TurnService Turns,
    TurnFollower Follower,
    TurnStore TurnStore,
    ConversationStore Conversations,
    ClientThreadStore Threads,
    AgentService Agents,
    ModelCatalog Models,
    IOptions<Chat.ChatOptions> Chat,
    TimeProvider Time);

/// <summary>One line of a client's transcript: a user's or the assistant's text.</summary>
public sealed record TranscriptLine(string Role, string Text);

/// <summary>A request made a turn: whose, in which conversation, after which transcript, with what.</summary>
public sealed record Exchange(Guid UserId, Guid ConversationId, IReadOnlyList<TranscriptLine> Transcript, string Content, TurnRecord Turn, string Model, bool Stateless, CancellationToken Aborted);

// OpenAI clients send many fields the agent does not take (temperature, top_p, tools, user, …): ignored here, as
// OpenAI-compatible servers do, where AiChat's own API refuses an unknown field.
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Skip)]
public sealed record ChatCompletionRequest(
    string? Model,
    List<ChatCompletionMessage>? Messages,
    bool? Stream,
    CompletionStreamOptions? StreamOptions,
    JsonElement? Metadata,
    int? N);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Skip)]
public sealed record ChatCompletionMessage(string? Role, JsonElement Content);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Skip)]
public sealed record CompletionStreamOptions(bool? IncludeUsage);

public sealed record OpenAiModelList(string Object, IReadOnlyList<OpenAiModel> Data);

public sealed record OpenAiModel(string Id, string Object, long Created, string OwnedBy);

public sealed record ChatCompletion(string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, CompletionUsage? Usage);

public sealed record CompletionChoice(int Index, CompletionMessage Message, string FinishReason);

public sealed record CompletionMessage(string Role, string Content);

public sealed record CompletionUsage(int PromptTokens, int CompletionTokens, int TotalTokens);
