using System.Data.Common;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Mvc;

namespace AiChat.Api.Infrastructure;

/// <summary>
/// Turns every exception into an RFC 9457 problem: a request the framework could not read keeps its 4xx status
/// (malformed JSON 400, wrong media type 415, body too large 413); a feature's own exceptions become the problems that
/// feature maps them to (<see cref="IExceptionProblems"/>); anything else is a 500 without internals.
/// </summary>
public sealed partial class ProblemExceptionHandler(IProblemDetailsService problems, IEnumerable<IExceptionProblems> features, ILogger<ProblemExceptionHandler> logger)
    : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is BadHttpRequestException { InnerException: JsonException json } && BodyFieldProblem(json) is { } fieldProblem)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = fieldProblem });
        }

        var (status, code, detail) = exception switch
        {
            BadHttpRequestException { InnerException: JsonException } =>
                (StatusCodes.Status400BadRequest, ProblemCodes.MalformedJson, "The request body is not valid JSON for this endpoint."),
            BadHttpRequestException bad when bad.StatusCode == StatusCodes.Status413PayloadTooLarge =>
                (bad.StatusCode, ProblemCodes.PayloadTooLarge, "The request body is larger than this API accepts."),
            BadHttpRequestException bad when bad.StatusCode == StatusCodes.Status415UnsupportedMediaType =>
                (bad.StatusCode, ProblemCodes.UnsupportedMediaType, "Send the request body as application/json."),
            BadHttpRequestException bad =>
                (bad.StatusCode, ProblemCodes.ForStatus(bad.StatusCode), bad.Message),
            _ when StoreUnavailable(exception) =>
                (StatusCodes.Status503ServiceUnavailable, ProblemCodes.StoreUnavailable, "The database is not answering; nothing was changed. Try again shortly."),
            _ => features.Select(feature => feature.Map(exception)).FirstOrDefault(mapped => mapped is not null) is { } mapped
                ? (mapped.Status, mapped.Code, mapped.Detail)
                : (StatusCodes.Status500InternalServerError, ProblemCodes.InternalError, "An unexpected error occurred. It has been logged."),
        };

        if (status == StatusCodes.Status500InternalServerError)
        {
            LogUnhandled(logger, exception, context.Request.Method, context.Request.Path);
        }

        if (code == ProblemCodes.StoreUnavailable)
        {
            context.Response.Headers.RetryAfter = StoreRetryAfterSeconds;
        }

        context.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = null, // never let an exception's text or stack reach the writer
            ProblemDetails =
            {
                Status = status,
                Title = ReasonPhrases.GetReasonPhrase(status),
                Detail = detail,
                Extensions = { ["code"] = code },
            },
        });
    }

    private const string StoreRetryAfterSeconds = "2";

    /// <summary>
    /// The database cannot be reached or is going away (connection refused or broken, Postgres shutting down or starting
    /// up): the providers mark these transient, or Postgres says so with an 08 or 57P state. Looked for in inner exceptions too.
    /// </summary>
    private static bool StoreUnavailable(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is DbException { IsTransient: true } or DbException { SqlState: ['0', '8', ..] or ['5', '7', 'P', ..] })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A body refused for one field (a text rule broken, a field the endpoint does not know), naming the field.</summary>
    private static ProblemDetails? BodyFieldProblem(JsonException json)
    {
        var (code, field, detail) = json switch
        {
            InvalidTextException => (ProblemCodes.InvalidText, FieldOf(json.Path), TextRules.Detail),
            // The serializer's own wording is the only sign of an unmapped member: "The JSON property 'x' could not be mapped…".
            { Message: var message } when message.Contains("could not be mapped", StringComparison.Ordinal) && message.Split('\'') is [_, var name, ..] =>
                (ProblemCodes.UnknownField, name, "The request has a field this endpoint does not take."),
            _ => default,
        };
        if (code is null)
        {
            return null;
        }

        return new ProblemDetails
        {
            Status = StatusCodes.Status400BadRequest,
            Title = ReasonPhrases.GetReasonPhrase(StatusCodes.Status400BadRequest),
            Detail = detail,
            Extensions = { ["code"] = code, ["errors"] = new Dictionary<string, string[]> { [field] = [detail] } },
        };
    }

    // "$.blocks[0].value" → "blocks[0].value"
    private static string FieldOf(string? path) => path is null or "$" ? "body" : path.TrimStart('$', '.');

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception on {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path);
}
