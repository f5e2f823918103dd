using System.Text.Json;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Http.Json;
using Scalar.AspNetCore;

namespace AiChat.Api.Infrastructure;

public static class ApiDefaults
{
    /// <summary>JSON in snake_case, RFC 9457 problems with a <c>code</c>, a body size limit, forwarded headers, rate limiting, OpenAPI.</summary>
    public static IHostApplicationBuilder AddApiDefaults(this IHostApplicationBuilder builder)
    {
        var maxBodyBytes = MaxBodyBytes(builder.Configuration);
        builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(kestrel =>
            kestrel.Limits.MaxRequestBodySize = maxBodyBytes);

        builder.Services.Configure<JsonOptions>(options =>
        {
            options.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            options.SerializerOptions.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower;

            // A field the endpoint does not know is refused, not ignored: a misspelt field never passes as "left out".
            options.SerializerOptions.UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow;
            options.SerializerOptions.Converters.Add(new CheckedStringConverter());
        });

        // Failures to bind a request throw, so the exception handler can answer them with a problem document.
        builder.Services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            var problem = context.ProblemDetails;
            problem.Status ??= context.HttpContext.Response.StatusCode;
            problem.Type ??= $"https://aichat.dev/problems/{ProblemCodes.ForStatus(problem.Status.Value).Replace('_', '-')}";
            problem.Extensions.TryAdd("code", ProblemCodes.ForStatus(problem.Status.Value));
            problem.Extensions.Remove("exception");
            problem.Instance ??= context.HttpContext.Request.Path;
            problem.Extensions["trace_id"] = System.Diagnostics.Activity.Current?.TraceId.ToString() ?? context.HttpContext.TraceIdentifier;
        });
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();

        builder.Services.Configure<ForwardedHeadersOptions>(options =>
        {
            // The gateway runs beside the API; only loopback (and configured) proxies are believed.
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            foreach (var proxy in builder.Configuration.GetSection("Api:KnownProxies").Get<string[]>() ?? [])
            {
                options.KnownProxies.Add(System.Net.IPAddress.Parse(proxy));
            }

            // The gateway sets exactly one entry (the address it vouches for); anything left of it is not the gateway's word.
            options.ForwardLimit = 1;
        });

        // Each limit answers its own refusals (a problem with its code and Retry-After); this is the status for any other.
        builder.Services.AddRateLimiter(options => options.RejectionStatusCode = StatusCodes.Status429TooManyRequests);

        builder.Services.AddOpenApi();
        return builder;
    }

    /// <summary>The middleware every request passes: forwarded headers, problems for errors and bare status codes, auth, rate limits.</summary>
    public static WebApplication UseApiDefaults(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRequestChecks(MaxBodyBytes(app.Configuration));
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();

        app.MapOpenApi();
        if (app.Environment.IsDevelopment())
        {
            app.MapScalarApiReference();
        }

        return app;
    }

    private static long MaxBodyBytes(IConfiguration configuration) => configuration.GetValue<long?>("Api:MaxRequestBodyBytes") ?? 1024 * 1024;
}
