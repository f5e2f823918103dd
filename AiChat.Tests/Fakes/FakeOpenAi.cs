using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Fakes;

/// <summary>In-process fake of an OpenAI-compatible <c>/v1/chat/completions</c> endpoint (OpenAI / LiteLLM wire format).</summary>
public sealed class FakeOpenAi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Lock _gate = new();
    private readonly Queue<FakeReply> _queue = new();
    private readonly List<FakeRequest> _requests = [];
    private FakeReply _defaultReply = FakeReply.Text("ok");
    private int _completionCounter;
    private int _callCounter;

    private FakeOpenAi(WebApplication app, string apiKey)
    {
        _app = app;
        ApiKey = apiKey;
    }

    /// <summary>Base URL including <c>/v1</c>; pass it as the OpenAI client's Endpoint.</summary>
    public Uri BaseUrl { get; private set; } = null!;

    public string ApiKey { get; }

    /// <summary>Reply used when no scripted reply is queued. Defaults to the text "ok".</summary>
    public FakeReply DefaultReply
    {
        get { lock (_gate) return _defaultReply; }
        set { lock (_gate) _defaultReply = value ?? throw new ArgumentNullException(nameof(value)); }
    }

    /// <summary>Snapshot of every request received, including rejected ones, in arrival order.</summary>
    public IReadOnlyList<FakeRequest> Requests
    {
        get { lock (_gate) return _requests.ToArray(); }
    }

    public static async Task<FakeOpenAi> StartAsync(string apiKey = "sk-test")
    {
        var builder = FakeHost.CreateBuilder();
        var app = builder.Build();
        var fake = new FakeOpenAi(app, apiKey);
        app.MapPost("/v1/chat/completions", (RequestDelegate)fake.HandleAsync);
        fake.BaseUrl = new Uri(await FakeHost.StartOnLoopbackAsync(app) + "/v1");
        return fake;
    }

    /// <summary>Queues a reply for the next accepted request (FIFO). Rejected requests (401/400) do not consume replies.</summary>
    public void Enqueue(FakeReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        lock (_gate) _queue.Enqueue(reply);
    }

    public async ValueTask DisposeAsync()
    {
        await FakeHost.StopAsync(_app);
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _app.Lifetime.ApplicationStopping);
        var ct = cts.Token;
        try
        {
            using var reader = new StreamReader(ctx.Request.Body);
            var raw = await reader.ReadToEndAsync(ct);
            JsonObject? body = null;
            try { body = JsonNode.Parse(raw) as JsonObject; }
            catch (JsonException) { }

            var request = FakeRequest.Create(ctx.Request, raw, body ?? []);
            lock (_gate) _requests.Add(request);

            if (request.Authorization != $"Bearer {ApiKey}")
            {
                await WriteErrorAsync(ctx, 401, "invalid_request_error", "Incorrect API key provided.", "invalid_api_key", ct);
                return;
            }
            if ((body is null ? "Request body is not a JSON object." : Validate(body)) is { } problem)
            {
                await WriteErrorAsync(ctx, 400, "invalid_request_error", problem, "400", ct);
                return;
            }

            FakeReply reply;
            lock (_gate) reply = _queue.TryDequeue(out var next) ? next : _defaultReply;
            var delay = TimeSpan.Zero;
            while (reply is FakeReply.DelayedReply d)
            {
                delay += d.DelayBetweenChunks;
                reply = d.Inner;
            }

            if (reply is FakeReply.ErrorReply e)
            {
                await Task.Delay(delay, ct);
                await WriteErrorAsync(ctx, e.Status, e.Type, e.Message, e.Status.ToString(CultureInfo.InvariantCulture), ct);
                return;
            }

            var completion = new Completion($"chatcmpl-{Interlocked.Increment(ref _completionCounter)}",
                DateTimeOffset.UtcNow.ToUnixTimeSeconds(), request.Model ?? "", reply switch
                {
                    FakeReply.ToolCallReply c => c.CallId ?? $"call_{Interlocked.Increment(ref _callCounter)}",
                    _ => "",
                });
            if (request.Stream)
                await StreamAsync(ctx, completion, reply, delay, request.IncludeUsage, ct);
            else
                await RespondAsync(ctx, completion, reply, delay, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            ctx.Abort();
        }
    }

    private static async Task RespondAsync(HttpContext ctx, Completion c, FakeReply reply, TimeSpan delay, CancellationToken ct)
    {
        await Task.Delay(delay, ct);
        var (message, finish, usage) = reply switch
        {
            FakeReply.TextReply t => (new JsonObject { ["role"] = "assistant", ["content"] = t.Content }, "stop",
                Usage(t.PromptTokens, t.CompletionTokens, t.Cost)),
            FakeReply.ToolCallReply t => (new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = null,
                ["tool_calls"] = new JsonArray(ToolCall(c.CallId, t.Name, t.ArgumentsJson)),
            }, "tool_calls", Usage(t.PromptTokens, t.CompletionTokens, null)),
            FakeReply.ErrorMidStreamReply or FakeReply.MalformedReply => (null, "", null),
            _ => throw new InvalidOperationException($"Unsupported reply {reply.GetType().Name}"),
        };
        ctx.Response.ContentType = "application/json";
        if (message is null)
        {
            // A truncated body: aborted for ErrorMidStream, syntactically broken for Malformed.
            await ctx.Response.WriteAsync("{\"id\":\"" + c.Id + "\",\"choices\":[{\"message\":{not json", ct);
            await ctx.Response.Body.FlushAsync(ct);
            if (reply is FakeReply.ErrorMidStreamReply)
                await AbortAfterDrainAsync(ctx);
            return;
        }
        var body = Envelope(c, "chat.completion", new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = finish });
        body["usage"] = usage;
        await ctx.Response.WriteAsync(body.ToJsonString(), ct);
    }

    private static async Task StreamAsync(HttpContext ctx, Completion c, FakeReply reply, TimeSpan delay, bool includeUsage, CancellationToken ct)
    {
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var first = true;

        async Task SendAsync(string data)
        {
            if (!first)
                await Task.Delay(delay, ct);
            first = false;
            await ctx.Response.WriteAsync($"data: {data}\n\n", ct);
            await ctx.Response.Body.FlushAsync(ct);
        }

        Task DeltaAsync(JsonObject delta, string? finish = null) => SendAsync(Envelope(c, "chat.completion.chunk",
            new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }).ToJsonString());

        async Task TextAsync(string text, int chunkSize)
        {
            await DeltaAsync(new JsonObject { ["role"] = "assistant", ["content"] = "" });
            foreach (var piece in Split(text, chunkSize))
                await DeltaAsync(new JsonObject { ["content"] = piece });
        }

        async Task FinishAsync(string finish, JsonObject usage)
        {
            await DeltaAsync(new JsonObject(), finish);
            if (includeUsage)
            {
                var last = Envelope(c, "chat.completion.chunk", null);
                last["usage"] = usage;
                await SendAsync(last.ToJsonString());
            }
            await SendAsync("[DONE]");
        }

        switch (reply)
        {
            case FakeReply.TextReply t:
                await TextAsync(t.Content, t.ChunkSize);
                await FinishAsync("stop", Usage(t.PromptTokens, t.CompletionTokens, t.Cost));
                break;
            case FakeReply.ToolCallReply t:
                await DeltaAsync(new JsonObject
                {
                    ["role"] = "assistant",
                    ["content"] = null,
                    ["tool_calls"] = new JsonArray(ToolCall(c.CallId, t.Name, "", index: 0)),
                });
                foreach (var fragment in Split(t.ArgumentsJson, (t.ArgumentsJson.Length + 2) / 3))
                {
                    await DeltaAsync(new JsonObject
                    {
                        ["tool_calls"] = new JsonArray(new JsonObject { ["index"] = 0, ["function"] = new JsonObject { ["arguments"] = fragment } }),
                    });
                }
                await FinishAsync("tool_calls", Usage(t.PromptTokens, t.CompletionTokens, null));
                break;
            case FakeReply.ErrorMidStreamReply m:
                await TextAsync(m.TextBefore, 3);
                if (m.AbortConnection)
                    await AbortAfterDrainAsync(ctx);
                else
                    await SendAsync(ErrorJson("Connection to the upstream provider was lost.", "internal_server_error", "500"));
                break;
            case FakeReply.MalformedReply m:
                await TextAsync(m.TextBefore, 3);
                await SendAsync("{not json");
                break;
        }
    }

    private static JsonObject Envelope(Completion c, string kind, JsonObject? choice) => new()
    {
        ["id"] = c.Id,
        ["object"] = kind,
        ["created"] = c.Created,
        ["model"] = c.Model,
        ["choices"] = choice is null ? new JsonArray() : new JsonArray(choice),
    };

    private static JsonObject ToolCall(string id, string name, string arguments, int? index = null)
    {
        var call = new JsonObject { ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments } };
        if (index is { } i)
            call.Insert(0, "index", i);
        return call;
    }

    private static JsonObject Usage(int prompt, int completion, decimal? cost)
    {
        var usage = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
        if (cost is { } value)
            usage["cost"] = value;
        return usage;
    }

    private static IEnumerable<string> Split(string text, int size)
    {
        size = Math.Max(1, size);
        for (var i = 0; i < text.Length;)
        {
            var n = Math.Min(size, text.Length - i);
            // Never split a surrogate pair: each chunk must be valid UTF-16 to serialize.
            if (char.IsHighSurrogate(text[i + n - 1]) && i + n < text.Length)
                n++;
            yield return text.Substring(i, n);
            i += n;
        }
    }

    // Abort() drops bytes still queued in Kestrel's output pipe, so give them time to reach the client first.
    private static async Task AbortAfterDrainAsync(HttpContext ctx)
    {
        await Task.Delay(100);
        ctx.Abort();
    }

    private static string ErrorJson(string message, string type, string code) => new JsonObject
    {
        ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code },
    }.ToJsonString();

    private static Task WriteErrorAsync(HttpContext ctx, int status, string type, string message, string code, CancellationToken ct)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(ErrorJson(message, type, code), ct);
    }

    // Mirrors the checks OpenAI (and LiteLLM's providers) enforce, so malformed conversations fail loudly in tests.
    private static string? Validate(JsonObject body)
    {
        if (Str(body["model"]) is null)
            return "'model' is required.";
        if (body["messages"] is not JsonArray { Count: > 0 } messages)
            return "'messages' must be a non-empty array.";
        var pending = new HashSet<string>();
        foreach (var node in messages)
        {
            var role = Str(Get(node, "role"));
            if (role == "tool")
            {
                var id = Str(Get(node, "tool_call_id"));
                if (id is null || !pending.Remove(id))
                    return $"Messages with role 'tool' must be a response to a preceding message with 'tool_calls' (tool_call_id '{id}').";
                continue;
            }
            if (pending.Count > 0)
                return $"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id': {string.Join(", ", pending)}.";
            if (role is "system" or "developer" or "user")
                continue;
            if (role != "assistant")
                return $"Invalid message role '{role}'.";
            if (Get(node, "tool_calls") is not JsonArray calls)
                continue;
            foreach (var call in calls)
            {
                var function = Get(call, "function");
                if (Str(Get(call, "id")) is not { } id || Str(Get(function, "name")) is null || Str(Get(function, "arguments")) is null)
                    return "Each assistant tool call needs 'id', 'function.name' and 'function.arguments'.";
                pending.Add(id);
            }
        }
        if (pending.Count > 0)
            return $"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id': {string.Join(", ", pending)}.";
        if (body["tools"] is { } tools)
        {
            if (tools is not JsonArray list)
                return "'tools' must be an array.";
            if (list.Any(t => Str(Get(t, "type")) != "function" || Str(Get(Get(t, "function"), "name")) is null))
                return "Each tool needs type 'function' and 'function.name'.";
        }
        return null;
    }

    internal static JsonNode? Get(JsonNode? node, string key) => (node as JsonObject)?[key];

    internal static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private sealed record Completion(string Id, long Created, string Model, string CallId);
}

/// <summary>One request as received by <see cref="FakeOpenAi"/>.</summary>
public sealed record FakeRequest(
    string Path,
    IReadOnlyDictionary<string, string> Headers,
    string? Authorization,
    string RawBody,
    JsonObject Body,
    string? Model,
    bool Stream,
    bool IncludeUsage,
    int? MaxTokens,
    IReadOnlyList<string> ToolNames)
{
    public JsonArray Messages => Body["messages"] as JsonArray ?? [];

    internal static FakeRequest Create(HttpRequest http, string raw, JsonObject body)
    {
        static bool Flag(JsonNode? n) => n is JsonValue v && v.TryGetValue(out bool b) && b;
        static int? Int(JsonNode? n) => n is JsonValue v && v.TryGetValue(out int i) ? i : null;

        var headers = http.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var tools = (body["tools"] as JsonArray ?? [])
            .Select(t => FakeOpenAi.Str(FakeOpenAi.Get(FakeOpenAi.Get(t, "function"), "name")))
            .OfType<string>().ToArray();
        return new FakeRequest(http.Path, headers, headers.GetValueOrDefault("Authorization"), raw, body,
            FakeOpenAi.Str(body["model"]), Flag(body["stream"]), Flag(FakeOpenAi.Get(body["stream_options"], "include_usage")),
            Int(body["max_completion_tokens"]) ?? Int(body["max_tokens"]), tools);
    }
}

/// <summary>A scripted reply for <see cref="FakeOpenAi"/>.</summary>
public abstract record FakeReply
{
    private protected FakeReply() { }

    public static FakeReply Text(string text, int promptTokens = 10, int completionTokens = 5, decimal? cost = null, int chunkSize = 3) =>
        new TextReply(text, promptTokens, completionTokens, cost, chunkSize);

    /// <summary>A single function call; when streamed, the arguments arrive in several fragments. Ids default to call_1, call_2, … per server.</summary>
    public static FakeReply ToolCall(string name, string argumentsJson, int promptTokens = 10, int completionTokens = 5, string? callId = null) =>
        new ToolCallReply(name, argumentsJson, promptTokens, completionTokens, callId);

    /// <summary>HTTP error status with an OpenAI error object, sent before any other byte.</summary>
    public static FakeReply Error(int status, string type, string message) => new ErrorReply(status, type, message);

    /// <summary>LiteLLM's budget error (429; older LiteLLM versions used 400).</summary>
    public static FakeReply BudgetExceeded(int status = 429) =>
        Error(status, "budget_exceeded", "Budget has been exceeded! Current cost: 1.0042, Max budget: 1.0");

    /// <summary>
    /// Streams <paramref name="textBefore"/> as deltas, then, with no finish chunk or [DONE], either aborts the connection
    /// or (<paramref name="abortConnection"/> false) sends a LiteLLM-style <c>data: {"error":{…}}</c> line and ends the response.
    /// Non-streamed requests get a truncated body and an aborted connection.
    /// </summary>
    public static FakeReply ErrorMidStream(string textBefore, bool abortConnection = true) => new ErrorMidStreamReply(textBefore, abortConnection);

    /// <summary>Streams <paramref name="textBefore"/> as deltas, then a <c>data: {not json</c> line and ends (non-streamed: a broken JSON body).</summary>
    public static FakeReply Malformed(string textBefore) => new MalformedReply(textBefore);

    /// <summary>Waits <paramref name="delayBetweenChunks"/> between stream chunks (once before a non-streamed or error reply).</summary>
    public static FakeReply Delayed(FakeReply inner, TimeSpan delayBetweenChunks) => new DelayedReply(inner, delayBetweenChunks);

    internal sealed record TextReply(string Content, int PromptTokens, int CompletionTokens, decimal? Cost, int ChunkSize) : FakeReply;
    internal sealed record ToolCallReply(string Name, string ArgumentsJson, int PromptTokens, int CompletionTokens, string? CallId) : FakeReply;
    internal sealed record ErrorReply(int Status, string Type, string Message) : FakeReply;
    internal sealed record ErrorMidStreamReply(string TextBefore, bool AbortConnection) : FakeReply;
    internal sealed record MalformedReply(string TextBefore) : FakeReply;
    internal sealed record DelayedReply(FakeReply Inner, TimeSpan DelayBetweenChunks) : FakeReply;
}
