using System.ClientModel;
using System.Text.Json;

namespace AiChat.Api.Llm;

/// <summary>Why an LLM call failed, as a client is told: an HTTP status, a stable code, a detail, and the figures that explain it.</summary>
public sealed record LlmFailure(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Figures);

/// <summary>Maps a failed LLM call onto a stable problem code and a detail that carries no upstream secrets.</summary>
public static class LlmErrors
{
    public const string Unreachable = "llm_unreachable";
    public const string RateLimited = "llm_rate_limited";
    public const string Rejected = "llm_rejected";
    public const string ProtocolError = "llm_protocol_error";
    public const string Failed = "llm_error";
    public const string BudgetExceeded = "budget_exceeded";
    public const string ModelNotPriced = "model_not_priced";
    public const string UnknownModel = "unknown_model";
    public const string UpstreamUnavailable = Infrastructure.ProblemCodes.UpstreamUnavailable;

    public static LlmFailure Describe(Exception exception)
    {
        var code = CodeFor(exception);
        return new LlmFailure(StatusFor(code), code, DetailFor(exception), LlmErrorFigures.For(exception));
    }

    public static string CodeFor(Exception exception) => exception switch
    {
        _ when UpstreamUnavailableException.In(exception) is not null => UpstreamUnavailable,
        Billing.BudgetExceededException => BudgetExceeded,
        ClientResultException liteLlm when Billing.LiteLlmErrors.IsBudgetExceeded(liteLlm) => BudgetExceeded,
        Billing.ModelNotPricedException => ModelNotPriced,
        ClientResultException { Status: 429 } => RateLimited,
        ClientResultException { Status: >= 400 and < 500 } => Rejected,
        ClientResultException { Status: 0 } => Unreachable,
        HttpRequestException or TimeoutException or TaskCanceledException or Polly.Timeout.TimeoutRejectedException => Unreachable,
        JsonException or FormatException or LlmStreamIncompleteException or IOException => ProtocolError,
        _ => Failed,
    };

    /// <summary>The HTTP status a failed LLM call is answered with: 402 for a budget, 503 for a missing price or an open breaker, 429 for a rate limit, else 502.</summary>
    public static int StatusFor(string code) => code switch
    {
        BudgetExceeded => StatusCodes.Status402PaymentRequired,
        ModelNotPriced or UpstreamUnavailable => StatusCodes.Status503ServiceUnavailable,
        RateLimited => StatusCodes.Status429TooManyRequests,
        _ => StatusCodes.Status502BadGateway,
    };

    public static string DetailFor(Exception exception) => CodeFor(exception) switch
    {
        BudgetExceeded when exception is ClientResultException => "The budget is used up (LiteLLM refused the call).",
        BudgetExceeded or ModelNotPriced => exception.Message,
        UpstreamUnavailable => "The language model is failing; AiChat stopped calling it for a while. Try again after the Retry-After delay.",
        RateLimited => "The language model is rate limiting requests. Try again shortly.",
        Rejected => $"The language model refused the request (status {(exception as ClientResultException)?.Status}).",
        Unreachable => "The language model could not be reached.",
        ProtocolError => "The language model's reply was cut off or could not be read.",
        _ => "The language model call failed.",
    };
}

public static class LlmErrorFigures
{
    /// <summary>The figures a client needs to act on a refusal: what is left, what was needed.</summary>
    public static IReadOnlyDictionary<string, object?>? For(Exception exception) => exception switch
    {
        Billing.BudgetExceededException budget => new Dictionary<string, object?>
        {
            ["remaining_usd"] = Billing.PriceTable.ToUsd(budget.RemainingNanos),
            ["required_usd"] = Billing.PriceTable.ToUsd(budget.RequiredNanos),
        },
        Billing.ModelNotPricedException priced => new Dictionary<string, object?> { ["model"] = priced.Model },
        _ when UpstreamUnavailableException.In(exception) is { } refused => Infrastructure.Problems.RetryAfterFigures(refused.RetryAfterSeconds),
        _ => null,
    };
}

/// <summary>The model's stream ended without a finish reason: the reply was cut off.</summary>
public sealed class LlmStreamIncompleteException() : Exception("The language model's stream ended before the reply was finished.");
