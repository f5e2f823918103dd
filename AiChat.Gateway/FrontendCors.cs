using Microsoft.AspNetCore.Cors.Infrastructure;

namespace AiChat.Gateway;

/// <summary>
/// CORS for separate frontends (ASP.NET Core's middleware): origins from <c>Gateway:Cors:AllowedOrigins</c>, preflights
/// answered here, never by the API. Bearer tokens only, so credentials (cookies) are not allowed.
/// </summary>
public static class FrontendCors
{
    public static readonly string[] Methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// <summary>What a frontend sends: its token, JSON, a retry key, where a stream resumes, the answer format it wants.</summary>
    public static readonly string[] RequestHeaders = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "Accept", "X-AiChat-Conversation", "Mcp-Session-Id", "Mcp-Protocol-Version"];

    /// <summary>What a frontend must read beyond the safelisted headers: when to retry, what was created, which turn streams, why a token failed.</summary>
    public static readonly string[] ExposedHeaders = ["Retry-After", "Location", "X-Turn-Id", "WWW-Authenticate", "X-AiChat-Conversation", "Mcp-Session-Id"];

    public static IServiceCollection AddFrontendCors(this IServiceCollection services, FrontendCorsOptions options) =>
        services.AddCors(cors => cors.AddDefaultPolicy(Policy(options)));

    public static CorsPolicy Policy(FrontendCorsOptions options) => new CorsPolicyBuilder()
        .WithOrigins(options.AllowedOrigins.Select(origin => origin.TrimEnd('/')).ToArray())
        .WithMethods(Methods)
        .WithHeaders(RequestHeaders)
        .WithExposedHeaders(ExposedHeaders)
        .SetPreflightMaxAge(options.PreflightMaxAge)
        .DisallowCredentials()
        .Build();
}
