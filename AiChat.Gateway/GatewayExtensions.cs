namespace AiChat.Gateway;

public static class GatewayExtensions
{
    /// <summary>
    /// YARP with routes from the <c>ReverseProxy</c> section, destinations resolved by service discovery, and the edge:
    /// the client address it vouches for, the body limit, problem documents, CORS for the frontends in configuration.
    /// </summary>
    public static IHostApplicationBuilder AddGateway(this IHostApplicationBuilder builder)
    {
        var options = GatewayOptions.Read(builder.Configuration);
        builder.Services.AddSingleton(options);

        builder.Services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
            .AddServiceDiscoveryDestinationResolver()
            .AddTransforms(ClientAddress.ForwardOnlyWhatTheGatewaySaw);

        builder.Services.AddClientAddress(options);
        builder.Services.AddRequestBodyLimit(options);
        builder.Services.AddGatewayProblems(options);
        builder.Services.AddFrontendCors(options.Cors);
        return builder;
    }

    /// <summary>
    /// The web client from wwwroot, <c>/api/**</c>, <c>/v1/**</c> (OpenAI-compatible), <c>/mcp</c>, <c>/health</c> and <c>/openapi/**</c> proxied to the API
    /// (SSE-safe: YARP streams responses unbuffered), and <c>/internal/**</c> never forwarded. Every response carries the
    /// security headers and, for an allowed frontend, the CORS headers — the gateway's own problems included. A request
    /// that never reached an API instance is retried on another (<see cref="ReplicaRetry"/>).
    /// </summary>
    public static WebApplication MapGateway(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<GatewayOptions>();

        app.UseForwardedHeaders();
        app.UseSecurityHeaders(EdgeHeaders.Policy());
        app.UseCors();
        // The bare statuses YARP sets (a chunked body cut at the limit, the API not answering) become problems too.
        app.UseStatusCodePages();
        app.UseRequestBodyLimit(options);
        app.UseInternalRoutesBlocked();
        app.UseDefaultFiles();
        app.UseStaticFiles();

        // YARP's default pipeline, behind a retry of what never reached an instance.
        app.MapReverseProxy(proxy =>
        {
            proxy.UseRetryOfUnreachedRequests();
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        app.MapFallbackToFile("index.html");
        return app;
    }
}
