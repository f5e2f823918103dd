using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Fakes;

/// <summary>
/// In-process contract fake of the LiteLLM proxy (<c>contracts/litellm.md</c>) served by Kestrel on 127.0.0.1, in memory:
/// the management API behind the master key (internal users with budgets, virtual keys), the health probes, and
/// <c>/v1/chat/completions</c> in OpenAI format with a virtual key, streamed or not. Each call is billed to the key's user
/// at <see cref="PromptTokenPriceUsd"/> / <see cref="CompletionTokenPriceUsd"/>; once the user's spend reaches the budget,
/// calls are refused with <c>budget_exceeded</c>. Unlike LiteLLM, spend is counted at once rather than in batches.
/// Generated keys and the master key are registered with <see cref="LogSink"/> for the leak check.
/// </summary>
public sealed partial class FakeLiteLlm : IAsyncDisposable
{
    public const string DefaultReply = "Hello from the fake LiteLLM.";

    private const string BodyItem = "fake-litellm-body";
    private const string UrlSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    private const int StreamChunkSize = 5;

    private readonly Lock _gate = new();
    private readonly WebApplication _app;
    private readonly Dictionary<string, FakeUser> _users = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FakeKey> _keys = new(StringComparer.Ordinal);
    private readonly List<RecordedRequest> _requests = [];
    private readonly Queue<QueuedReply> _replies = new();
    private Failure? _nextFailure;
    private int _budgetErrorStatus = StatusCodes.Status429TooManyRequests;
    private decimal _promptPrice = 0.00000015m;
    private decimal _completionPrice = 0.0000006m;
    private int _disposed;

    private FakeLiteLlm(string masterKey)
    {
        MasterKey = masterKey;
        _app = BuildApp();
    }

    /// <summary>The proxy's base address, ending in <c>/</c>; the OpenAI endpoint is <c>new Uri(Url, "/v1")</c>.</summary>
    public Uri Url { get; private set; } = null!;

    public string MasterKey { get; }

    /// <summary>The status of a <c>budget_exceeded</c> answer: 429 as current versions send, or 400 as older ones did.</summary>
    public int BudgetErrorStatus
    {
        get { lock (_gate) { return _budgetErrorStatus; } }
        set { lock (_gate) { _budgetErrorStatus = value; } }
    }

    /// <summary>USD per prompt token (default: gpt-4o-mini's $0.15 per million).</summary>
    public decimal PromptTokenPriceUsd
    {
        get { lock (_gate) { return _promptPrice; } }
        set { lock (_gate) { _promptPrice = value; } }
    }

    /// <summary>USD per completion token (default: gpt-4o-mini's $0.60 per million).</summary>
    public decimal CompletionTokenPriceUsd
    {
        get { lock (_gate) { return _completionPrice; } }
        set { lock (_gate) { _completionPrice = value; } }
    }

    public IReadOnlyList<UserState> Users
    {
        get { lock (_gate) { return _users.Values.Select(Snapshot).ToArray(); } }
    }

    public IReadOnlyList<KeyState> Keys
    {
        get { lock (_gate) { return _keys.Values.Select(Snapshot).ToArray(); } }
    }

    /// <summary>Every request received, including refused ones, in arrival order.</summary>
    public IReadOnlyList<Request> Requests
    {
        get { lock (_gate) { return _requests.Select(r => new Request(r.Method, r.Path, r.Query, r.Authorization, r.Body, r.Status)).ToArray(); } }
    }

    public static async Task<FakeLiteLlm> StartAsync(string? masterKey = null)
    {
        var fake = new FakeLiteLlm(LogSink.Secret(masterKey ?? "sk-master-" + RandomNumberGenerator.GetString(UrlSafe, 32)));
        try
        {
            fake.Url = new Uri(await FakeHost.StartOnLoopbackAsync(fake._app).ConfigureAwait(false) + "/");
            return fake;
        }
        catch
        {
            await fake.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public UserState? User(Guid userId)
    {
        lock (_gate)
        {
            return _users.TryGetValue(userId.ToString(), out var user) ? Snapshot(user) : null;
        }
    }

    /// <summary>The next chat completion answers <paramref name="text"/>; token counts default to about one per four characters.</summary>
    public void QueueReply(string text, int? promptTokens = null, int? completionTokens = null)
    {
        lock (_gate)
        {
            _replies.Enqueue(new QueuedReply(text, promptTokens, completionTokens));
        }
    }

    /// <summary>The next request (any but a health probe) is answered with this error before anything else happens.</summary>
    public void FailNext(int status, string type, string? message = null)
    {
        lock (_gate)
        {
            _nextFailure = new Failure(status, type, message ?? $"Forced failure ({type})");
        }
    }

    /// <summary>Sets what LiteLLM has counted against the user's budget.</summary>
    public void SetSpend(Guid userId, decimal spend)
    {
        lock (_gate)
        {
            (_users.TryGetValue(userId.ToString(), out var user) ? user : throw new InvalidOperationException($"No user {userId}.")).Spend = spend;
        }
    }

    /// <summary>What a call with these token counts costs at the current prices.</summary>
    public decimal CostOf(int promptTokens, int completionTokens)
    {
        lock (_gate)
        {
            return Normalize((promptTokens * _promptPrice) + (completionTokens * _completionPrice));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await FakeHost.StopAsync(_app).ConfigureAwait(false);
    }

    private WebApplication BuildApp()
    {
        var builder = FakeHost.CreateBuilder();

        var web = builder.Build();
        web.Use(CheckRequestAsync);

        web.MapGet("/health/liveliness", (RequestDelegate)(ctx => WriteJsonAsync(ctx, 200, JsonValue.Create("I'm alive!"))));
        web.MapGet("/health/readiness", (RequestDelegate)(ctx => WriteJsonAsync(ctx, 200, new JsonObject
        {
            ["status"] = "connected",
            ["db"] = "connected",
            ["cache"] = null,
            ["litellm_version"] = "fake",
        })));

        web.MapPost("/user/new", (RequestDelegate)CreateUserAsync);
        web.MapPost("/user/update", (RequestDelegate)UpdateUserAsync);
        web.MapPost("/user/delete", (RequestDelegate)DeleteUsersAsync);
        web.MapGet("/user/info", (RequestDelegate)GetUserInfoAsync);
        web.MapPost("/key/generate", (RequestDelegate)GenerateKeyAsync);
        web.MapPost("/key/delete", (RequestDelegate)DeleteKeysAsync);
        web.MapPost("/v1/chat/completions", (RequestDelegate)ChatCompletionsAsync);
        web.MapPost("/chat/completions", (RequestDelegate)ChatCompletionsAsync);

        web.MapFallback((RequestDelegate)(ctx => WriteJsonAsync(ctx, StatusCodes.Status404NotFound, new JsonObject { ["detail"] = "Not Found" })));
        return web;
    }

    private async Task CheckRequestAsync(HttpContext ctx, RequestDelegate next)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(ctx.RequestAborted).ConfigureAwait(false);
        ctx.Items[BodyItem] = body;
        var path = ctx.Request.Path.Value ?? "";
        var authorization = ctx.Request.Headers.Authorization.Count > 0 ? ctx.Request.Headers.Authorization.ToString() : null;
        var recorded = new RecordedRequest(ctx.Request.Method, path, ctx.Request.QueryString.Value ?? "", authorization, body);
        ctx.Response.OnStarting(() =>
        {
            lock (_gate)
            {
                recorded.Status = ctx.Response.StatusCode;
            }

            return Task.CompletedTask;
        });
        Failure? failure = null;
        lock (_gate)
        {
            _requests.Add(recorded);
            if (!path.StartsWith("/health", StringComparison.Ordinal))
            {
                failure = _nextFailure;
                _nextFailure = null;
            }
        }

        if (path.StartsWith("/health", StringComparison.Ordinal))
        {
            await next(ctx).ConfigureAwait(false);
            return;
        }

        if (failure is not null)
        {
            await WriteErrorAsync(ctx, failure.Status, failure.Type, failure.Message).ConfigureAwait(false);
            return;
        }

        var token = authorization is null ? null : BearerPattern().Match(authorization) is { Success: true } match ? match.Groups[1].Value : null;
        if (token is null)
        {
            await WriteAuthErrorAsync(ctx, "Authentication Error, No api key passed in.").ConfigureAwait(false);
            return;
        }

        var isMaster = CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes(MasterKey));
        bool isVirtualKey;
        lock (_gate)
        {
            isVirtualKey = _keys.ContainsKey(token);
        }

        if (!isMaster && !isVirtualKey)
        {
            await WriteAuthErrorAsync(
                ctx,
                $"Authentication Error, Invalid proxy server token passed. Received API Key = {Abbreviate(token)}, Key Hash (Token) ={Hash(token)}. Unable to find token in cache or `LiteLLM_VerificationTokenTable`").ConfigureAwait(false);
            return;
        }

        var management = path.StartsWith("/user/", StringComparison.Ordinal) || path.StartsWith("/key/", StringComparison.Ordinal);
        if (management && !isMaster)
        {
            await WriteAuthErrorAsync(ctx, "Authentication Error, Only proxy admin can be used to generate, delete, update info for new keys/users/teams.").ConfigureAwait(false);
            return;
        }

        await next(ctx).ConfigureAwait(false);
    }

    private async Task CreateUserAsync(HttpContext ctx)
    {
        if (Body(ctx) is not { } body)
        {
            await WriteBadBodyAsync(ctx).ConfigureAwait(false);
            return;
        }

        var userId = GetString(body, "user_id") ?? Guid.NewGuid().ToString();
        var duration = GetString(body, "budget_duration");
        if (duration is not null && !DurationPattern().IsMatch(duration))
        {
            await WriteErrorAsync(ctx, 400, "bad_request_error", $"Invalid budget_duration={duration}. Use e.g. 30s, 30m, 30h, 30d or 1mo.", "budget_duration").ConfigureAwait(false);
            return;
        }

        JsonObject? json = null;
        lock (_gate)
        {
            if (!_users.ContainsKey(userId))
            {
                var user = new FakeUser(userId) { MaxBudget = GetDecimal(body, "max_budget"), BudgetDuration = duration };
                user.BudgetResetAt = ResetAt(duration, DateTimeOffset.UtcNow);
                _users[userId] = user;
                var key = body["auto_create_key"] is JsonValue auto && auto.GetValueKind() == JsonValueKind.False
                    ? null
                    : IssueKey(userId, GetString(body, "key_alias"), null, null);
                json = UserJson(user);
                json["key"] = key?.Raw ?? "";
            }
        }

        if (json is null)
        {
            await WriteWrappedAsync(ctx, StatusCodes.Status409Conflict, $"{{'error': 'User with id {userId} already exists'}}").ConfigureAwait(false);
            return;
        }

        await WriteJsonAsync(ctx, 200, json).ConfigureAwait(false);
    }

    private async Task UpdateUserAsync(HttpContext ctx)
    {
        if (Body(ctx) is not { } body || GetString(body, "user_id") is not { } userId)
        {
            await WriteBadBodyAsync(ctx).ConfigureAwait(false);
            return;
        }

        var duration = GetString(body, "budget_duration");
        if (duration is not null && !DurationPattern().IsMatch(duration))
        {
            await WriteErrorAsync(ctx, 400, "bad_request_error", $"Invalid budget_duration={duration}. Use e.g. 30s, 30m, 30h, 30d or 1mo.", "budget_duration").ConfigureAwait(false);
            return;
        }

        JsonObject? json = null;
        lock (_gate)
        {
            if (_users.TryGetValue(userId, out var user))
            {
                if (body.ContainsKey("max_budget"))
                {
                    user.MaxBudget = GetDecimal(body, "max_budget");
                }

                if (duration is not null)
                {
                    user.BudgetDuration = duration;
                    user.BudgetResetAt = ResetAt(duration, DateTimeOffset.UtcNow);
                }

                json = new JsonObject { ["user_id"] = userId, ["data"] = UserJson(user) };
            }
        }

        await (json is null
            ? WriteWrappedAsync(ctx, StatusCodes.Status404NotFound, $"{{'error': 'User not found, passed user_id={userId}'}}")
            : WriteJsonAsync(ctx, 200, json)).ConfigureAwait(false);
    }

    private async Task DeleteUsersAsync(HttpContext ctx)
    {
        if (Body(ctx) is not { } body || body["user_ids"] is not JsonArray ids)
        {
            await WriteBadBodyAsync(ctx).ConfigureAwait(false);
            return;
        }

        var userIds = ids.Select(id => id?.GetValue<string>() ?? "").ToList();
        string? missing;
        lock (_gate)
        {
            missing = userIds.FirstOrDefault(id => !_users.ContainsKey(id));
            if (missing is null)
            {
                foreach (var id in userIds)
                {
                    _users.Remove(id);
                    foreach (var raw in _keys.Values.Where(k => k.UserId == id).Select(k => k.Raw).ToList())
                    {
                        _keys.Remove(raw);
                    }
                }
            }
        }

        await (missing is not null
            ? WriteWrappedAsync(ctx, StatusCodes.Status404NotFound, $"{{'error': 'User not found, passed user_id={missing}'}}")
            : WriteJsonAsync(ctx, 200, JsonValue.Create(userIds.Count))).ConfigureAwait(false);
    }

    private Task GetUserInfoAsync(HttpContext ctx)
    {
        var userId = ctx.Request.Query["user_id"].ToString();
        JsonObject? json = null;
        lock (_gate)
        {
            if (_users.TryGetValue(userId, out var user))
            {
                json = new JsonObject
                {
                    ["user_id"] = userId,
                    ["user_info"] = UserJson(user),
                    ["keys"] = new JsonArray(_keys.Values.Where(k => k.UserId == userId).Select(k => (JsonNode)KeyInfoJson(k)).ToArray()),
                    ["teams"] = new JsonArray(),
                };
            }
        }

        return json is null
            ? WriteWrappedAsync(ctx, StatusCodes.Status404NotFound, $"User {userId} not found")
            : WriteJsonAsync(ctx, 200, json);
    }

    private async Task GenerateKeyAsync(HttpContext ctx)
    {
        if (Body(ctx) is not { } body)
        {
            await WriteBadBodyAsync(ctx).ConfigureAwait(false);
            return;
        }

        var alias = GetString(body, "key_alias");
        JsonObject? json = null;
        lock (_gate)
        {
            if (alias is null || _keys.Values.All(k => k.Alias != alias))
            {
                var key = IssueKey(GetString(body, "user_id"), alias, GetString(body, "team_id"), body["metadata"] as JsonObject);
                json = KeyInfoJson(key);
                json["key"] = key.Raw;
                json["token_id"] = key.Token;
                json["expires"] = null;
            }
        }

        if (json is null)
        {
            await WriteErrorAsync(ctx, 400, "bad_request_error", $"Key with alias '{alias}' already exists. Unique key aliases across all keys are required.", "key_alias").ConfigureAwait(false);
            return;
        }

        await WriteJsonAsync(ctx, 200, json).ConfigureAwait(false);
    }

    private async Task DeleteKeysAsync(HttpContext ctx)
    {
        if (Body(ctx) is not { } body)
        {
            await WriteBadBodyAsync(ctx).ConfigureAwait(false);
            return;
        }

        var keys = (body["keys"] as JsonArray ?? []).Select(k => k?.GetValue<string>() ?? "").ToList();
        var aliases = (body["key_aliases"] as JsonArray ?? []).Select(a => a?.GetValue<string>() ?? "").ToList();
        var deleted = new JsonArray();
        lock (_gate)
        {
            // A key is named by its raw value or by its hash, as LiteLLM accepts both.
            var matches = _keys.Values.Where(k => keys.Contains(k.Raw) || keys.Contains(k.Token) || (k.Alias is not null && aliases.Contains(k.Alias))).ToList();
            foreach (var key in matches)
            {
                _keys.Remove(key.Raw);
                deleted.Add(key.Alias is not null && aliases.Contains(key.Alias) ? key.Alias : keys.Contains(key.Raw) ? key.Raw : key.Token);
            }
        }

        await (deleted.Count == 0
            ? WriteWrappedAsync(ctx, StatusCodes.Status404NotFound, "{'error': 'No keys found'}")
            : WriteJsonAsync(ctx, 200, new JsonObject { ["deleted_keys"] = deleted })).ConfigureAwait(false);
    }

    private async Task ChatCompletionsAsync(HttpContext ctx)
    {
        var body = Body(ctx);
        var model = body is null ? null : GetString(body, "model");
        if (body is null || string.IsNullOrEmpty(model) || body["messages"] is not JsonArray { Count: > 0 } messages)
        {
            await WriteErrorAsync(ctx, 400, "bad_request_error", "Invalid request: model and a non-empty messages list are required.").ConfigureAwait(false);
            return;
        }

        var token = BearerPattern().Match(ctx.Request.Headers.Authorization.ToString()).Groups[1].Value;
        Billing? billing = null;
        (int Status, string Message) budgetError = (0, "");
        lock (_gate)
        {
            var key = _keys.GetValueOrDefault(token);
            var user = key?.UserId is { } userId ? _users.GetValueOrDefault(userId) : null;
            if (user is { MaxBudget: { } max } && user.Spend >= max)
            {
                budgetError = (_budgetErrorStatus, $"Budget has been exceeded! User={user.UserId} Current cost: {Invariant(user.Spend)}, Max budget: {Invariant(max)}");
            }
            else
            {
                var reply = _replies.TryDequeue(out var queued) ? queued : new QueuedReply(DefaultReply, null, null);
                var prompt = reply.PromptTokens ?? EstimateTokens(messages.Sum(ContentLength));
                var completion = reply.CompletionTokens ?? EstimateTokens(reply.Text.Length);
                billing = new Billing(reply.Text, prompt, completion, Normalize((prompt * _promptPrice) + (completion * _completionPrice)));
                if (user is not null)
                {
                    user.Spend += billing.Cost;
                }

                if (key is not null)
                {
                    key.Spend += billing.Cost;
                }
            }
        }

        if (billing is null)
        {
            await WriteErrorAsync(ctx, budgetError.Status, "budget_exceeded", budgetError.Message).ConfigureAwait(false);
            return;
        }

        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ctx.Response.Headers["x-litellm-call-id"] = Guid.NewGuid().ToString();
        var usage = new JsonObject
        {
            ["prompt_tokens"] = billing.PromptTokens,
            ["completion_tokens"] = billing.CompletionTokens,
            ["total_tokens"] = billing.PromptTokens + billing.CompletionTokens,
        };

        if (body["stream"] is JsonValue stream && stream.GetValueKind() == JsonValueKind.True)
        {
            var includeUsage = body["stream_options"] is JsonObject options && options["include_usage"] is JsonValue include && include.GetValueKind() == JsonValueKind.True;
            usage["cost"] = billing.Cost;
            await StreamAsync(ctx, id, created, model, billing.Text, includeUsage ? usage : null).ConfigureAwait(false);
            return;
        }

        ctx.Response.Headers["x-litellm-response-cost"] = Invariant(billing.Cost);
        await WriteJsonAsync(ctx, 200, new JsonObject
        {
            ["id"] = id,
            ["object"] = "chat.completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = billing.Text },
                ["finish_reason"] = "stop",
            }),
            ["usage"] = usage,
        }).ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpContext ctx, string id, long created, string model, string text, JsonObject? usage)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";

        async Task SendAsync(string data)
        {
            await ctx.Response.WriteAsync($"data: {data}\n\n", ctx.RequestAborted).ConfigureAwait(false);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
        }

        JsonObject Chunk(JsonArray choices) => new()
        {
            ["id"] = id,
            ["object"] = "chat.completion.chunk",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = choices,
        };

        JsonArray Delta(JsonObject delta, string? finishReason) =>
            new(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason });

        var first = true;
        foreach (var piece in Split(text))
        {
            var delta = new JsonObject { ["content"] = piece };
            if (first)
            {
                delta.Insert(0, "role", "assistant");
                first = false;
            }

            await SendAsync(Chunk(Delta(delta, null)).ToJsonString()).ConfigureAwait(false);
        }

        await SendAsync(Chunk(Delta([], "stop")).ToJsonString()).ConfigureAwait(false);
        if (usage is not null)
        {
            var last = Chunk([]);
            last["usage"] = usage;
            await SendAsync(last.ToJsonString()).ConfigureAwait(false);
        }

        await SendAsync("[DONE]").ConfigureAwait(false);
    }

    private FakeKey IssueKey(string? userId, string? alias, string? teamId, JsonObject? metadata)
    {
        var raw = LogSink.Secret("sk-" + RandomNumberGenerator.GetString(UrlSafe, 22));
        var key = new FakeKey(raw, Hash(raw), userId, alias, teamId, (metadata?.DeepClone() as JsonObject ?? []).ToJsonString());
        _keys[raw] = key;
        return key;
    }

    private static JsonObject UserJson(FakeUser user) => new()
    {
        ["user_id"] = user.UserId,
        ["max_budget"] = user.MaxBudget,
        ["spend"] = user.Spend,
        ["budget_duration"] = user.BudgetDuration,
        ["budget_reset_at"] = user.BudgetResetAt?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        ["user_role"] = "internal_user",
        ["models"] = new JsonArray(),
        ["teams"] = new JsonArray(),
    };

    // The hash and an abbreviation: LiteLLM never shows a raw key after it was generated.
    private static JsonObject KeyInfoJson(FakeKey key) => new()
    {
        ["token"] = key.Token,
        ["key_name"] = Abbreviate(key.Raw),
        ["key_alias"] = key.Alias,
        ["user_id"] = key.UserId,
        ["team_id"] = key.TeamId,
        ["spend"] = key.Spend,
        ["max_budget"] = null,
        ["metadata"] = JsonNode.Parse(key.Metadata),
    };

    private static UserState Snapshot(FakeUser user) => new(user.UserId, user.MaxBudget, user.BudgetDuration, user.Spend, user.BudgetResetAt);

    private static KeyState Snapshot(FakeKey key) => new(key.Raw, key.Token, key.UserId, key.Alias, key.TeamId, key.Metadata, key.Spend);

    // Kept simple: days count from today's UTC midnight, months from the 1st, shorter units from now.
    private static DateTimeOffset? ResetAt(string? duration, DateTimeOffset now)
    {
        if (duration is null || DurationPattern().Match(duration) is not { Success: true } match)
        {
            return null;
        }

        var count = int.Parse(match.Groups["count"].Value, CultureInfo.InvariantCulture);
        var midnight = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        return match.Groups["unit"].Value switch
        {
            "s" => now.AddSeconds(count),
            "m" => now.AddMinutes(count),
            "h" => now.AddHours(count),
            "d" => midnight.AddDays(count),
            _ => new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(count),
        };
    }

    private static int ContentLength(JsonNode? message) => (message as JsonObject)?["content"] switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>().Length,
        JsonArray parts => parts.Sum(part => part?["text"] is JsonValue text && text.GetValueKind() == JsonValueKind.String ? text.GetValue<string>().Length : 0),
        _ => 0,
    };

    private static int EstimateTokens(int characters) => Math.Max(1, (characters + 3) / 4);

    private static IEnumerable<string> Split(string text)
    {
        for (var i = 0; i < text.Length;)
        {
            var n = Math.Min(StreamChunkSize, text.Length - i);
            // Never split a surrogate pair: each chunk must be valid UTF-16 to serialize.
            if (char.IsHighSurrogate(text[i + n - 1]) && i + n < text.Length)
            {
                n++;
            }

            yield return text.Substring(i, n);
            i += n;
        }
    }

    private static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static string Abbreviate(string key) => key.Length > 7 ? $"sk-...{key[^4..]}" : "sk-...";

    // Drops trailing zeros so that 0.00015000 is written as 0.00015.
    private static decimal Normalize(decimal value) => value / 1.000000000000000000000000000000000m;

    private static string Invariant(decimal value) => Normalize(value).ToString(CultureInfo.InvariantCulture);

    private static JsonObject? Body(HttpContext ctx)
    {
        try
        {
            return ctx.Items[BodyItem] is string { Length: > 0 } text ? JsonNode.Parse(text) as JsonObject : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? GetString(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static decimal? GetDecimal(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.Number ? value.GetValue<decimal>() : null;

    private static Task WriteBadBodyAsync(HttpContext ctx) =>
        WriteErrorAsync(ctx, 400, "bad_request_error", "Invalid request body.");

    private static Task WriteAuthErrorAsync(HttpContext ctx, string message) =>
        WriteErrorAsync(ctx, StatusCodes.Status401Unauthorized, "auth_error", message, "None");

    // LiteLLM turns an HTTPException raised in a management endpoint into a ProxyException of this type, whatever the status.
    private static Task WriteWrappedAsync(HttpContext ctx, int status, string message) =>
        WriteErrorAsync(ctx, status, "internal_server_error", message, "None");

    private static Task WriteErrorAsync(HttpContext ctx, int status, string type, string message, string? param = null) =>
        WriteJsonAsync(ctx, status, new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = message,
                ["type"] = type,
                ["param"] = param,
                ["code"] = status.ToString(CultureInfo.InvariantCulture),
            },
        });

    private static Task WriteJsonAsync(HttpContext ctx, int status, JsonNode? body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body?.ToJsonString() ?? "null", ctx.RequestAborted);
    }

    [GeneratedRegex(@"^\s*bearer\s+(\S+)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex BearerPattern();

    // The units of the contract: 30s, 30m, 30h, 30d, 1mo.
    [GeneratedRegex(@"^(?<count>\d+)(?<unit>s|m|h|d|mo)$")]
    private static partial Regex DurationPattern();

    /// <summary>A LiteLLM internal user as the fake holds it.</summary>
    public sealed record UserState(string UserId, decimal? MaxBudget, string? BudgetDuration, decimal Spend, DateTimeOffset? BudgetResetAt);

    /// <summary>A virtual key: its raw value, LiteLLM's hash of it, its user, alias, team and metadata (JSON).</summary>
    public sealed record KeyState(string Raw, string Token, string? UserId, string? Alias, string? TeamId, string Metadata, decimal Spend);

    /// <summary>One request as received, and the status it was answered with (0 until the answer starts).</summary>
    public sealed record Request(string Method, string Path, string Query, string? Authorization, string Body, int Status);

    private sealed record QueuedReply(string Text, int? PromptTokens, int? CompletionTokens);

    private sealed record Failure(int Status, string Type, string Message);

    private sealed record Billing(string Text, int PromptTokens, int CompletionTokens, decimal Cost);

    private sealed class RecordedRequest(string method, string path, string query, string? authorization, string body)
    {
        public string Method { get; } = method;
        public string Path { get; } = path;
        public string Query { get; } = query;
        public string? Authorization { get; } = authorization;
        public string Body { get; } = body;
        public int Status { get; set; }
    }

    private sealed class FakeUser(string userId)
    {
        public string UserId { get; } = userId;
        public decimal? MaxBudget { get; set; }
        public string? BudgetDuration { get; set; }
        public decimal Spend { get; set; }
        public DateTimeOffset? BudgetResetAt { get; set; }
    }

    private sealed class FakeKey(string raw, string token, string? userId, string? alias, string? teamId, string metadata)
    {
        public string Raw { get; } = raw;
        public string Token { get; } = token;
        public string? UserId { get; } = userId;
        public string? Alias { get; } = alias;
        public string? TeamId { get; } = teamId;
        public string Metadata { get; } = metadata;
        public decimal Spend { get; set; }
    }
}
