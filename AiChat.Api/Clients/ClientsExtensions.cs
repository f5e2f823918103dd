using Microsoft.AspNetCore.RateLimiting;
using System.Threading.RateLimiting;
using AiChat.Api.Infrastructure;

namespace AiChat.Api.Clients;

public static class ClientsExtensions
{
    /// <summary>The policy on <c>/mcp</c>: requests per user per minute.</summary>
    public const string McpPolicy = "mcp-requests";

    /// <summary>
    /// Other clients of the user's agent: the OpenAI-compatible endpoint (its conversation threads, its errors in OpenAI's
    /// shape) and the MCP server (Streamable HTTP, stateless, so any instance answers any request).
    /// </summary>
    public static IHostApplicationBuilder AddClients(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ClientThreadStore>();
        // Before the default writer, which would otherwise take every problem.
        builder.Services.Insert(0, ServiceDescriptor.Singleton<IProblemDetailsWriter, OpenAiProblemWriter>());
        builder.Services.AddMcpServer(options => options.ServerInfo = new() { Name = "aichat", Version = "1.0.0" })
            .WithHttpTransport(options => options.Stateless = true)
            .WithTools<McpTools>(new System.Text.Json.JsonSerializerOptions(ModelContextProtocol.McpJsonUtilities.DefaultOptions)
            {
                // The tools' answers read like the rest of the API: snake_case.
                PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
            });

        var perMinute = builder.Configuration.GetValue<int?>("Clients:McpRequestsPerMinute") ?? 120;
        builder.Services.AddRateLimiter(options => options.AddPolicy(McpPolicy, context =>
            context.User.Identity?.IsAuthenticated == true
                ? RateLimitPartition.GetFixedWindowLimiter(context.User.UserId(), _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = Math.Max(1, perMinute),
                    Window = TimeSpan.FromMinutes(1),
                    QueueLimit = 0,
                })
                : RateLimitPartition.GetNoLimiter(Guid.Empty)));
        return builder;
    }

    /// <summary>The MCP server at <c>/mcp</c>, for a personal API key (or an access token).</summary>
    public static IEndpointRouteBuilder MapMcpServer(this IEndpointRouteBuilder app)
    {
        app.MapMcp("/mcp").RequireAuthorization().RequireRateLimiting(McpPolicy).WithTags("MCP");
        return app;
    }
}
