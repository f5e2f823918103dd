using System.ClientModel;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace AiChat.Api.Billing;

/// <summary>Reads LiteLLM's error bodies: <c>{"error":{"message","type","param","code"}}</c> (see <c>contracts/litellm.md</c>).</summary>
public static partial class LiteLlmErrors
{
    public const string BudgetExceededType = "budget_exceeded";

    private const int MaxMessageLength = 300;
    private const string KeyMask = "sk-…";

    /// <summary>
    /// True when LiteLLM refused a call because the user's budget is spent. Matched on the error type, never the status:
    /// current versions answer 429, older ones 400, and a 429 of another type is a rate limit.
    /// </summary>
    public static bool IsBudgetExceeded(int status, string? body) =>
        status >= 400 && Read(body) is { Type: BudgetExceededType };

    /// <summary>The same check on the exception an OpenAI client throws for LiteLLM's answer.</summary>
    public static bool IsBudgetExceeded(Exception exception)
    {
        if (exception is not ClientResultException { Status: var status } failure || failure.GetRawResponse() is not { } response)
        {
            return false;
        }

        try
        {
            return IsBudgetExceeded(status, response.Content.ToString());
        }
        catch (InvalidOperationException)
        {
            // The body of a streamed call that was never buffered cannot be read.
            return false;
        }
    }

    /// <summary>The error's message, type and param, or null when the body is not a LiteLLM (or FastAPI) error.</summary>
    internal static LiteLlmError? Read(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            if (root.TryGetProperty("error", out var error))
            {
                return error.ValueKind switch
                {
                    JsonValueKind.Object => new LiteLlmError(Text(error, "message"), Text(error, "type"), Text(error, "param")),
                    JsonValueKind.String => new LiteLlmError(error.GetString(), null, null),
                    _ => null,
                };
            }

            // Endpoints that raise FastAPI's HTTPException directly answer {"detail": "..."} or {"detail": {"error": "..."}}.
            if (root.TryGetProperty("detail", out var detail))
            {
                return detail.ValueKind switch
                {
                    JsonValueKind.String => new LiteLlmError(detail.GetString(), null, null),
                    JsonValueKind.Object => new LiteLlmError(Text(detail, "error") ?? detail.GetRawText(), null, null),
                    _ => null,
                };
            }

            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A message fit for exceptions: anything that looks like a key replaced, and cut to a readable length.</summary>
    internal static string Redact(string? text, params ReadOnlySpan<string?> secrets)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }

        foreach (var secret in secrets)
        {
            if (!string.IsNullOrEmpty(secret))
            {
                text = text.Replace(secret, KeyMask, StringComparison.Ordinal);
            }
        }

        text = KeyPattern().Replace(text, KeyMask);
        return text.Length > MaxMessageLength ? text[..MaxMessageLength] + "…" : text;
    }

    private static string? Text(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            _ => value.GetRawText(),
        }
        : null;

    // Master and virtual keys: "sk-" and the random part; LiteLLM's own abbreviation "sk-...abcd" is left alone.
    [GeneratedRegex(@"sk-[A-Za-z0-9_\-]{6,}")]
    private static partial Regex KeyPattern();
}

/// <summary>What LiteLLM said went wrong; <see cref="Type"/> is e.g. <c>budget_exceeded</c> or <c>auth_error</c>.</summary>
internal sealed record LiteLlmError(string? Message, string? Type, string? Param);

/// <summary>LiteLLM could not be reached, did not answer in time, or failed (5xx): worth retrying later.</summary>
public sealed class LiteLlmUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>LiteLLM answered a management call with a 4xx: retrying the same call will not help.</summary>
public sealed class LiteLlmRefusedException(int status, string? errorType, string message) : Exception(message)
{
    public int Status { get; } = status;

    /// <summary>LiteLLM's error type (<c>auth_error</c>, <c>bad_request_error</c>, …) when it gave one.</summary>
    public string? ErrorType { get; } = errorType;
}
