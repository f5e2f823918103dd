using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.RateLimiting;

namespace AiChat.Api.Infrastructure;

/// <summary>Builds the API's problem documents: a status, a stable <c>code</c>, a human <c>detail</c>.</summary>
public static class Problems
{
    public static ProblemHttpResult Of(int status, string code, string detail, IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var all = new Dictionary<string, object?> { ["code"] = code };
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            all[key] = value;
        }

        return TypedResults.Problem(statusCode: status, detail: detail, extensions: all);
    }

    /// <summary>422 <c>validation_failed</c> with the failing fields and why.</summary>
    public static ProblemHttpResult Validation(IDictionary<string, string[]> errors) =>
        Of(StatusCodes.Status422UnprocessableEntity, ProblemCodes.ValidationFailed, "The request has invalid fields.",
            new Dictionary<string, object?> { ["errors"] = errors });

    /// <summary>429 with <c>Retry-After</c> (and <c>retry_after_seconds</c>); <paramref name="detail"/> says what was too many, before when to retry.</summary>
    public static ProblemHttpResult TooManyRequests(HttpContext context, TimeSpan? retryAfter, string code = ProblemCodes.TooManyRequests, string detail = "Too many attempts.")
    {
        var seconds = (int)Math.Ceiling((retryAfter ?? TimeSpan.FromSeconds(60)).TotalSeconds);
        context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Of(StatusCodes.Status429TooManyRequests, code, $"{detail} Try again in {seconds} s.", RetryAfterFigures(seconds));
    }

    /// <summary>503 <c>upstream_unavailable</c> with <c>Retry-After</c>: an upstream's breaker is open, nothing was stored.</summary>
    public static ProblemHttpResult UpstreamUnavailable(HttpContext context, int retryAfterSeconds)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Of(StatusCodes.Status503ServiceUnavailable, ProblemCodes.UpstreamUnavailable,
            $"A service this answer needs is failing, so AiChat stopped calling it for a while. Nothing was stored. Try again in {retryAfterSeconds} s.",
            RetryAfterFigures(retryAfterSeconds));
    }

    /// <summary>The figure a refusal that can be retried carries; <see cref="SetRetryAfter"/> turns it into the header.</summary>
    public static IReadOnlyDictionary<string, object?> RetryAfterFigures(int seconds) =>
        new Dictionary<string, object?> { [RetryAfterSecondsFigure] = seconds };

    /// <summary>Sets <c>Retry-After</c> from a stored failure's <c>retry_after_seconds</c> figure, when it has one.</summary>
    public static void SetRetryAfter(HttpContext context, IReadOnlyDictionary<string, object?>? figures)
    {
        if (figures?.GetValueOrDefault(RetryAfterSecondsFigure) is { } value)
        {
            context.Response.Headers.RetryAfter = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private const string RetryAfterSecondsFigure = "retry_after_seconds";

    /// <summary>A rate limiter's refusal as a 429 problem, waiting as long as the refusing limiter says (else <paramref name="fallback"/>).</summary>
    public static ValueTask RateLimitedAsync(OnRejectedContext rejected, string code, string detail, TimeSpan? fallback = null)
    {
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : fallback;
        return new ValueTask(TooManyRequests(rejected.HttpContext, retryAfter, code, detail).ExecuteAsync(rejected.HttpContext));
    }
}

/// <summary>Collects field errors for a 422 problem.</summary>
public sealed class FieldErrors
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public bool Any => _errors.Count > 0;

    public FieldErrors Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var messages))
        {
            _errors[field] = messages = [];
        }

        messages.Add(message);
        return this;
    }

    public ProblemHttpResult ToProblem() => Problems.Validation(_errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));
}
