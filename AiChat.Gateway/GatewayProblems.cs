using System.Diagnostics;
using Microsoft.AspNetCore.WebUtilities;

namespace AiChat.Gateway;

/// <summary>
/// The gateway's own answers as the API's are: RFC 9457 problems with a type, title, status, stable <c>code</c> and
/// <c>trace_id</c>. They are few: a body over the limit, an <c>/internal</c> path, and the API not answering.
/// </summary>
public static class GatewayProblems
{
    public const string BadRequest = "bad_request";
    public const string NotFound = "not_found";
    public const string RequestTimeout = "request_timeout";
    public const string PayloadTooLarge = "payload_too_large";
    public const string BadGateway = "bad_gateway";
    public const string ServiceUnavailable = "service_unavailable";
    public const string GatewayTimeout = "gateway_timeout";
    public const string InternalError = "internal_error";

    public static string ForStatus(int status) => status switch
    {
        StatusCodes.Status404NotFound => NotFound,
        StatusCodes.Status408RequestTimeout => RequestTimeout,
        StatusCodes.Status413PayloadTooLarge => PayloadTooLarge,
        StatusCodes.Status502BadGateway => BadGateway,
        StatusCodes.Status503ServiceUnavailable => ServiceUnavailable,
        StatusCodes.Status504GatewayTimeout => GatewayTimeout,
        >= 500 => InternalError,
        _ => BadRequest,
    };

    /// <summary>Problem details for results and for the bare statuses YARP sets (a body over the limit mid-stream, the API down).</summary>
    public static IServiceCollection AddGatewayProblems(this IServiceCollection services, GatewayOptions options) =>
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
        {
            var problem = context.ProblemDetails;
            problem.Status ??= context.HttpContext.Response.StatusCode;
            var status = problem.Status.Value;
            var code = ForStatus(status);
            problem.Type ??= $"https://aichat.dev/problems/{code.Replace('_', '-')}";
            problem.Title ??= ReasonPhrases.GetReasonPhrase(status);
            problem.Detail ??= status == StatusCodes.Status413PayloadTooLarge
                ? $"A request body has at most {options.MaxRequestBodyBytes} bytes."
                : null;
            problem.Extensions.TryAdd("code", code);
            problem.Extensions.Remove("exception");
            problem.Instance ??= context.HttpContext.Request.Path;
            problem.Extensions["trace_id"] = Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
        });
}
