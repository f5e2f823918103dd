namespace AiChat.Api.Infrastructure;

/// <summary>The stable, machine-readable <c>code</c> of every problem document the API returns.</summary>
public static class ProblemCodes
{
    public const string BadRequest = "bad_request";
    public const string MalformedJson = "malformed_json";
    public const string InvalidText = "invalid_text";
    public const string UnknownField = "unknown_field";
    public const string HeaderTooLarge = "header_too_large";
    public const string ValidationFailed = "validation_failed";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not_found";
    public const string MethodNotAllowed = "method_not_allowed";
    public const string PayloadTooLarge = "payload_too_large";
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string TooManyRequests = "too_many_requests";
    public const string InternalError = "internal_error";
    public const string ServiceUnavailable = "service_unavailable";

    /// <summary>An upstream's circuit breaker is open (the LLM endpoint, Letta): nothing was sent or stored; the answer has a Retry-After.</summary>
    public const string UpstreamUnavailable = "upstream_unavailable";

    /// <summary>The database does not answer: nothing was stored; the answer has a Retry-After.</summary>
    public const string StoreUnavailable = "store_unavailable";

    /// <summary>The code for a status when the endpoint did not choose one.</summary>
    public static string ForStatus(int status) => status switch
    {
        StatusCodes.Status400BadRequest => BadRequest,
        StatusCodes.Status401Unauthorized => Unauthorized,
        StatusCodes.Status403Forbidden => Forbidden,
        StatusCodes.Status404NotFound => NotFound,
        StatusCodes.Status405MethodNotAllowed => MethodNotAllowed,
        StatusCodes.Status413PayloadTooLarge => PayloadTooLarge,
        StatusCodes.Status415UnsupportedMediaType => UnsupportedMediaType,
        StatusCodes.Status422UnprocessableEntity => ValidationFailed,
        StatusCodes.Status429TooManyRequests => TooManyRequests,
        StatusCodes.Status431RequestHeaderFieldsTooLarge => HeaderTooLarge,
        StatusCodes.Status503ServiceUnavailable => ServiceUnavailable,
        >= 500 => InternalError,
        _ => BadRequest,
    };
}
