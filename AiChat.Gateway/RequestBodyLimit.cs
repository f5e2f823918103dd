using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace AiChat.Gateway;

/// <summary>
/// The request body limit, answered by the gateway itself with 413 <c>payload_too_large</c> (before, the API's refusal
/// cut the upload YARP was forwarding and the client saw 502).
/// </summary>
public static class RequestBodyLimit
{
    /// <summary>Kestrel stops reading a body at the limit; YARP then answers 413 for a chunked body that grew over it.</summary>
    public static IServiceCollection AddRequestBodyLimit(this IServiceCollection services, GatewayOptions options) =>
        services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);

    /// <summary>A declared <c>Content-Length</c> over the limit is refused before anything is read or sent to the API.</summary>
    public static IApplicationBuilder UseRequestBodyLimit(this IApplicationBuilder app, GatewayOptions options) =>
        app.Use((context, next) => context.Request.ContentLength > options.MaxRequestBodyBytes
            ? Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge).ExecuteAsync(context)
            : next(context));
}
