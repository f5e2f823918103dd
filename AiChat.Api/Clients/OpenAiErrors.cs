using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Clients;

/// <summary>
/// Errors in OpenAI's shape (<c>{"error":{"message","type","param","code"}}</c>) for the OpenAI-compatible endpoint, so
/// the OpenAI SDKs raise the error class that status maps to. The code is AiChat's own code, except where OpenAI has a
/// well-known one (<c>model_not_found</c>, <c>insufficient_quota</c>).
/// </summary>
public static class OpenAiErrors
{
    public const string ModelNotFound = "model_not_found";
    public const string InsufficientQuota = "insufficient_quota";

    public static JsonHttpResult<OpenAiErrorEnvelope> Of(int status, string code, string message, string? param = null) =>
        TypedResults.Json(Envelope(status, code, message, param), statusCode: status);

    public static OpenAiErrorEnvelope Envelope(int status, string code, string message, string? param = null) =>
        new(new OpenAiError(message, TypeOf(status, code), param, code == "budget_exceeded" ? InsufficientQuota : code));

    /// <summary>OpenAI's <c>type</c> for a status (and the budget's refusal, which OpenAI calls <c>insufficient_quota</c>).</summary>
    public static string TypeOf(int status, string code) => code == "budget_exceeded" ? InsufficientQuota : status switch
    {
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status402PaymentRequired => InsufficientQuota,
        StatusCodes.Status403Forbidden => "permission_error",
        StatusCodes.Status404NotFound => "invalid_request_error",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}

public sealed record OpenAiErrorEnvelope(OpenAiError Error);

public sealed record OpenAiError(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    string Code);

/// <summary>
/// Writes every problem on the OpenAI-compatible paths (a refused key, a rate limit, malformed JSON, an unknown route)
/// as an OpenAI error object instead of RFC 9457: the clients there are OpenAI SDKs. Registered before the default writer.
/// </summary>
public sealed class OpenAiProblemWriter : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => OpenAiApi.IsOpenAiPath(context.HttpContext.Request.Path);

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var status = problem.Status ?? context.HttpContext.Response.StatusCode;
        var code = problem.Extensions.TryGetValue("code", out var value) && value is string text ? text : Infrastructure.ProblemCodes.ForStatus(status);
        var message = status == StatusCodes.Status401Unauthorized && problem.Detail is null
            ? "Send a personal API key (Authorization: Bearer aik_...): it is unknown, revoked or expired, or none was sent."
            : problem.Detail ?? problem.Title ?? Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);
        return new ValueTask(context.HttpContext.Response.WriteAsJsonAsync(OpenAiErrors.Envelope(status, code, message), OpenAiApi.Json, context.HttpContext.RequestAborted));
    }
}
