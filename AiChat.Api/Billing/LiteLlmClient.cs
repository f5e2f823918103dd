using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Polly;

namespace AiChat.Api.Billing;

/// <summary>
/// LiteLLM's management API (see <c>contracts/litellm.md</c>): each AiChat user is a LiteLLM internal user carrying the
/// budget, with one virtual key for the LLM calls made on their behalf. Every call carries the master key; no key ever
/// reaches an exception message or a log. Retries come from the HTTP client's management profile (reads only).
/// </summary>
public sealed partial class LiteLlmClient
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly IReadOnlyDictionary<string, string> KeyMetadata = new Dictionary<string, string> { ["app"] = "aichat" };

    private readonly HttpClient _http;
    private readonly LiteLlmOptions _options;
    private readonly ILogger<LiteLlmClient> _logger;

    public LiteLlmClient(HttpClient http, IOptions<LiteLlmOptions> options, ILogger<LiteLlmClient> logger)
    {
        _http = http;
        _options = options.Value;
        _logger = logger;
        http.BaseAddress ??= WithTrailingSlash(_options.BaseUrl);
    }

    /// <summary>The alias of the user's AiChat key; LiteLLM keeps aliases unique, so a user has at most one such key.</summary>
    public static string KeyAlias(Guid userId) => $"aichat-{userId:N}";

    /// <summary>
    /// LiteLLM's budget duration for an AiChat period (<c>1d, 1w, 1mo, 3mo, 6mo, 1y</c>). A duration it returns maps to
    /// itself, so passing either form is safe.
    /// </summary>
    public static string Duration(string period) => period switch
    {
        "1d" => "1d",
        "1w" or "7d" => "7d",
        "1mo" => "1mo",
        "3mo" or "90d" => "90d",
        "6mo" or "180d" => "180d",
        "1y" or "365d" => "365d",
        _ => throw new ArgumentOutOfRangeException(nameof(period), period, "A budget period is one of 1d, 1w, 1mo, 3mo, 6mo, 1y."),
    };

    /// <summary>
    /// Creates the LiteLLM user with its budget and no key. False when the user already existed, which is not an error,
    /// so that provisioning can be retried; its budget is then left as it was.
    /// </summary>
    public async Task<bool> CreateUserAsync(Guid userId, decimal maxBudgetUsd, string duration, CancellationToken cancellationToken)
    {
        var body = new NewUserBody(UserIdOf(userId), maxBudgetUsd, Duration(duration), AutoCreateKey: false);
        var reply = await CallAsync(HttpMethod.Post, "user/new", body, "create a user", cancellationToken);
        if (reply.Ok)
        {
            return true;
        }

        if (AlreadyExists(reply))
        {
            LogUserExisted(_logger, userId);
            return false;
        }

        throw Refused(reply, "create a user");
    }

    /// <summary>
    /// Issues the user's virtual key and returns it: the raw <c>sk-…</c> value, which LiteLLM shows only here. A key issued
    /// earlier under the same alias (a retried provisioning, a rotation) is revoked first, as LiteLLM refuses a second one.
    /// </summary>
    public async Task<string> GenerateKeyAsync(Guid userId, CancellationToken cancellationToken)
    {
        var alias = KeyAlias(userId);
        var body = new GenerateKeyBody(UserIdOf(userId), alias, KeyMetadata);
        var reply = await CallAsync(HttpMethod.Post, "key/generate", body, "generate a key", cancellationToken);
        if (IsAliasTaken(reply))
        {
            var deleted = await CallAsync(HttpMethod.Post, "key/delete", new DeleteKeysBody(null, [alias]), "revoke the earlier key", cancellationToken);
            if (!deleted.Ok && deleted.Status != 404)
            {
                throw Refused(deleted, "revoke the earlier key");
            }

            LogReplacedKey(_logger, userId);
            reply = await CallAsync(HttpMethod.Post, "key/generate", body, "generate a key", cancellationToken);
        }

        var key = Read<KeyBody>(reply, "generate a key").Key;
        return key is not null && key.StartsWith(LiteLlmOptions.KeyPrefix, StringComparison.Ordinal)
            ? key
            : throw new LiteLlmUnavailableException("LiteLLM answered the request to generate a key without a key.");
    }

    public async Task UpdateUserBudgetAsync(Guid userId, decimal maxBudgetUsd, string duration, CancellationToken cancellationToken)
    {
        var body = new UpdateUserBody(UserIdOf(userId), maxBudgetUsd, Duration(duration));
        var reply = await CallAsync(HttpMethod.Post, "user/update", body, "update a user's budget", cancellationToken);
        if (!reply.Ok)
        {
            throw Refused(reply, "update a user's budget");
        }
    }

    /// <summary>False when LiteLLM has no such key (already deleted).</summary>
    public async Task<bool> DeleteKeyAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var reply = await CallAsync(HttpMethod.Post, "key/delete", new DeleteKeysBody([key], null), "delete a key", cancellationToken);
        return reply.Status == 404 ? false : reply.Ok ? true : throw Refused(reply, "delete a key", key);
    }

    /// <summary>Deletes the user and, with it, the user's keys. False when LiteLLM has no such user.</summary>
    public async Task<bool> DeleteUserAsync(Guid userId, CancellationToken cancellationToken)
    {
        var reply = await CallAsync(HttpMethod.Post, "user/delete", new DeleteUsersBody([UserIdOf(userId)]), "delete a user", cancellationToken);
        return reply.Status == 404 ? false : reply.Ok ? true : throw Refused(reply, "delete a user");
    }

    /// <summary>
    /// What LiteLLM has counted against the user's budget, or null when it has no such user. LiteLLM writes spend in
    /// batches, so this trails real use by seconds to a minute: AiChat's own ledger decides, this is for reconciling.
    /// </summary>
    public async Task<LiteLlmUserSpend?> GetUserSpendAsync(Guid userId, CancellationToken cancellationToken)
    {
        var path = $"user/info?user_id={Uri.EscapeDataString(UserIdOf(userId))}";
        var reply = await CallAsync(HttpMethod.Get, path, null, "read a user's spend", cancellationToken);
        if (reply.Status == 404)
        {
            return null;
        }

        var info = Read<UserInfoBody>(reply, "read a user's spend").UserInfo
            ?? throw new LiteLlmUnavailableException("LiteLLM answered the request to read a user's spend without the user.");
        return new LiteLlmUserSpend(info.Spend ?? 0m, info.MaxBudget, ParseTime(info.BudgetResetAt));
    }

    private async Task<Reply> CallAsync(HttpMethod method, string path, object? body, string what, CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            throw new InvalidOperationException($"LiteLLM is not configured: set {LiteLlmOptions.Section}:{nameof(LiteLlmOptions.MasterKey)}.");
        }

        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.MasterKey);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: Json);
        }

        Reply reply;
        try
        {
            using var response = await _http.SendAsync(request, cancellationToken);
            reply = new Reply((int)response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or ExecutionRejectedException)
        {
            LogUnavailable(_logger, what, ex.GetType().Name);
            throw new LiteLlmUnavailableException($"LiteLLM could not be reached to {what}.", ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            LogUnavailable(_logger, what, "timeout");
            throw new LiteLlmUnavailableException($"LiteLLM did not answer in time to {what}.", ex);
        }

        if (reply.Status >= 500)
        {
            LogUnavailable(_logger, what, reply.Status.ToString(CultureInfo.InvariantCulture));
            throw new LiteLlmUnavailableException($"LiteLLM failed to {what}: {Describe(reply.Status, LiteLlmErrors.Read(reply.Body))}.");
        }

        return reply;
    }

    private T Read<T>(Reply reply, string what)
    {
        if (!reply.Ok)
        {
            throw Refused(reply, what);
        }

        try
        {
            return JsonSerializer.Deserialize<T>(reply.Body, Json) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new LiteLlmUnavailableException($"LiteLLM answered the request to {what} with a body AiChat could not read.", ex);
        }
    }

    private LiteLlmRefusedException Refused(Reply reply, string what, string? key = null)
    {
        var error = LiteLlmErrors.Read(reply.Body);
        LogRefused(_logger, what, reply.Status, error?.Type);
        return new LiteLlmRefusedException(reply.Status, error?.Type, $"LiteLLM refused to {what}: {Describe(reply.Status, error, key)}.");
    }

    // Status, type and LiteLLM's message with every key masked: some messages echo the key they were given.
    private string Describe(int status, LiteLlmError? error, string? key = null)
    {
        var type = error?.Type is { Length: > 0 } t ? $" {t}" : "";
        var message = LiteLlmErrors.Redact(error?.Message, _options.MasterKey, key);
        var code = status.ToString(CultureInfo.InvariantCulture);
        return message.Length > 0 ? $"{code}{type} ({message})" : code + type;
    }

    // Current versions answer 409; versions that answered 400 said so in the message.
    private static bool AlreadyExists(Reply reply) =>
        reply.Status == 409
        || (reply.Status == 400 && LiteLlmErrors.Read(reply.Body)?.Message?.Contains("already exists", StringComparison.OrdinalIgnoreCase) == true);

    private static bool IsAliasTaken(Reply reply) =>
        reply.Status == 400
        && LiteLlmErrors.Read(reply.Body) is { } error
        && (error.Param == "key_alias" || error.Message?.Contains("alias", StringComparison.OrdinalIgnoreCase) == true)
        && error.Message?.Contains("already exists", StringComparison.OrdinalIgnoreCase) == true;

    private static string UserIdOf(Guid userId) => userId.ToString("D");

    private static Uri WithTrailingSlash(Uri uri) =>
        uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");

    // LiteLLM writes UTC times, with or without an offset.
    private static DateTimeOffset? ParseTime(string? value) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            ? time
            : null;

    [LoggerMessage(Level = LogLevel.Information, Message = "LiteLLM user {UserId} already existed; provisioning goes on with it")]
    private static partial void LogUserExisted(ILogger logger, Guid userId);

    [LoggerMessage(Level = LogLevel.Information, Message = "LiteLLM already had an AiChat key for user {UserId}; it was revoked and a new one issued")]
    private static partial void LogReplacedKey(ILogger logger, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LiteLLM refused to {Operation}: {Status} {ErrorType}")]
    private static partial void LogRefused(ILogger logger, string operation, int status, string? errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LiteLLM was unavailable to {Operation} ({Reason})")]
    private static partial void LogUnavailable(ILogger logger, string operation, string reason);

    private sealed record Reply(int Status, string Body)
    {
        public bool Ok => Status is >= 200 and < 300;
    }

    private sealed record NewUserBody(string UserId, decimal MaxBudget, string BudgetDuration, bool AutoCreateKey);

    private sealed record UpdateUserBody(string UserId, decimal MaxBudget, string BudgetDuration);

    private sealed record GenerateKeyBody(string UserId, string KeyAlias, IReadOnlyDictionary<string, string> Metadata);

    private sealed record KeyBody(string? Key);

    private sealed record DeleteKeysBody(IReadOnlyList<string>? Keys, IReadOnlyList<string>? KeyAliases);

    private sealed record DeleteUsersBody(IReadOnlyList<string> UserIds);

    private sealed record UserInfoBody(UserInfoDetail? UserInfo);

    private sealed record UserInfoDetail(decimal? Spend, decimal? MaxBudget, string? BudgetResetAt);
}

/// <summary>A user's spend as LiteLLM counts it (USD), the budget it enforces (null: none), and when that budget resets.</summary>
public sealed record LiteLlmUserSpend(decimal SpendUsd, decimal? MaxBudgetUsd, DateTimeOffset? BudgetResetAt);
