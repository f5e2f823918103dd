using Microsoft.AspNetCore.HttpOverrides;

namespace AiChat.Gateway;

public static class GatewayExtensions
{
    /// <summary>YARP with routes from the <c>ReverseProxy</c> section, destinations resolved by service discovery.</summary>
    public static IHostApplicationBuilder AddGateway(this IHostApplicationBuilder builder)
    {
        builder.Services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
            .AddServiceDiscoveryDestinationResolver();

        builder.Services.Configure<ForwardedHeadersOptions>(options =>
        {
            // Believe X-Forwarded-* only from proxies named in configuration (a load balancer in front of the gateway).
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            foreach (var proxy in builder.Configuration.GetSection("Gateway:KnownProxies").Get<string[]>() ?? [])
            {
                options.KnownProxies.Add(System.Net.IPAddress.Parse(proxy));
            }
        });
        return builder;
    }

    /// <summary>
    /// The web client from wwwroot, <c>/api/**</c>, <c>/health</c> and <c>/openapi/**</c> proxied to the API
    /// (SSE-safe: YARP streams responses unbuffered), and <c>/internal/**</c> never forwarded.
    /// </summary>
    public static WebApplication MapGateway(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.UseDefaultFiles();
        app.UseStaticFiles();

        app.Map("/internal/{**rest}", () => Results.Problem(
            statusCode: StatusCodes.Status404NotFound,
            title: "Not Found",
            extensions: new Dictionary<string, object?> { ["code"] = "not_found" }));

        app.MapReverseProxy();
        app.MapFallbackToFile("index.html");
        return app;
    }
}
