using System.Net;
using System.Text.Json;
using AiChat;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Polly;

namespace Microsoft.Extensions.Hosting;

/// <summary>What every AiChat service shares: telemetry, health checks, service discovery and resilient HTTP clients.</summary>
public static class Extensions
{
    public const string HealthEndpointPath = "/health";
    public const string AlivenessEndpointPath = "/alive";

    // Microsoft.Extensions.AI's OpenTelemetryChatClient reports under this source and meter name.
    private const string ExtensionsAiTelemetryName = "Experimental.Microsoft.Extensions.AI";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();
        builder.Services.AddServiceDiscovery();

        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddManagementResilience();
            http.AddServiceDiscovery();
        });

        return builder;
    }

    /// <summary>Short timeouts; retries only for idempotent methods. The default for every client.</summary>
    public static IHttpClientBuilder AddManagementResilience(this IHttpClientBuilder http)
    {
        http.AddStandardResilienceHandler(options =>
        {
            options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(10);
            options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(30);
            options.CircuitBreaker.SamplingDuration = TimeSpan.FromSeconds(20);
            options.Retry.MaxRetryAttempts = 3;
            options.Retry.DisableForUnsafeHttpMethods();
        });
        return http;
    }

    /// <summary>
    /// For streamed LLM and agent calls: a long timeout up to the response headers, no total cut-off
    /// (the body may stream for many minutes), a retry only when the request never reached the server, and the
    /// upstream's circuit breaker (<see cref="UpstreamBreakerOptions"/> under <c>Resilience:{circuit}</c>), whose state
    /// the keyed <see cref="UpstreamCircuit"/> and the <c>{circuit}-circuit</c> health check (Degraded while open) show.
    /// </summary>
    public static IHttpClientBuilder AddStreamingResilience(this IHttpClientBuilder http, string circuit)
    {
#pragma warning disable EXTEXP0001 // RemoveAllResilienceHandlers is marked experimental; it is the documented way to replace the default handler.
        http.RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001
        http.ConfigureHttpClient(client => client.Timeout = Timeout.InfiniteTimeSpan);
        var services = http.Services;
        services.AddOptions<UpstreamBreakerOptions>(circuit).BindConfiguration($"{UpstreamBreakerOptions.Section}:{circuit}");
        services.TryAddKeyedSingleton(circuit, (sp, _) => new UpstreamCircuit(circuit, sp.GetService<TimeProvider>() ?? TimeProvider.System));
        services.AddHealthChecks().Add(new HealthCheckRegistration(
            $"{circuit}-circuit", sp => new UpstreamCircuitHealthCheck(sp.GetRequiredKeyedService<UpstreamCircuit>(circuit)), HealthStatus.Degraded, ["upstream"]));
        http.AddHttpMessageHandler(sp => new OpenCircuitHandler(sp.GetRequiredKeyedService<UpstreamCircuit>(circuit)));
        http.AddResilienceHandler(ResourceNames.StreamingClient, (pipeline, context) =>
        {
            var options = context.ServiceProvider.GetRequiredService<IOptionsMonitor<UpstreamBreakerOptions>>().Get(circuit);
            var state = context.ServiceProvider.GetRequiredKeyedService<UpstreamCircuit>(circuit);
            pipeline.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = 2,
                Delay = TimeSpan.FromMilliseconds(500),
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = args => ValueTask.FromResult(NeverReachedServer(args.Outcome)),
            });
            pipeline.AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
            {
                FailureRatio = options.FailureRatio,
                MinimumThroughput = options.MinimumThroughput,
                SamplingDuration = options.SamplingDuration,
                BreakDuration = options.BreakDuration,
                StateProvider = state.StateProvider,
                ShouldHandle = args => ValueTask.FromResult(UpstreamCircuit.IsUpstreamFailure(args.Outcome)),
                OnOpened = args =>
                {
                    state.Opened(args.BreakDuration);
                    return ValueTask.CompletedTask;
                },
            });
            pipeline.AddTimeout(options.AttemptTimeout);
        });
        return http;
    }

    /// <summary>Adds the <paramref name="name"/> health check: Degraded while the optional dependency's health endpoint (<paramref name="url"/>) does not answer.</summary>
    public static IServiceCollection AddUpstreamProbe(this IServiceCollection services, string name, Func<IServiceProvider, Uri> url)
    {
        services.AddHealthChecks().Add(new HealthCheckRegistration(
            name, sp => new UpstreamProbeHealthCheck(sp.GetRequiredService<IHttpClientFactory>(), () => url(sp)), HealthStatus.Degraded, ["upstream"]));
        return services;
    }

    /// <summary>True only when no byte of a response exists: connection refused or name not resolved.</summary>
    public static bool NeverReachedServer(Outcome<HttpResponseMessage> outcome) =>
        outcome.Result is null
        && outcome.Exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError };

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(ExtensionsAiTelemetryName)
                .AddMeter("AiChat.*"))
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(ExtensionsAiTelemetryName)
                .AddSource("AiChat.*")
                .AddAspNetCoreInstrumentation(options => options.Filter = context =>
                    !context.Request.Path.StartsWithSegments(HealthEndpointPath)
                    && !context.Request.Path.StartsWithSegments(AlivenessEndpointPath))
                .AddHttpClientInstrumentation());

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        return builder;
    }

    /// <summary>Maps <c>/health</c> (readiness: every check) and <c>/alive</c> (liveness) in every environment.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthEndpointPath, new HealthCheckOptions
        {
            ResponseWriter = WriteHealthJson,
        }).DisableHttpMetrics();

        return app.MapAliveEndpoint();
    }

    /// <summary>Maps only <c>/alive</c>: for a service whose <c>/health</c> belongs to another (the gateway forwards it).</summary>
    public static WebApplication MapAliveEndpoint(this WebApplication app)
    {
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains("live"),
            ResponseWriter = WriteHealthJson,
        }).DisableHttpMetrics();

        return app;
    }

    // Names and states only: a check's description or exception may carry connection details.
    private static Task WriteHealthJson(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        var body = new
        {
            status = report.Status.ToString(),
            duration_ms = Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            checks = report.Entries.ToDictionary(
                entry => entry.Key,
                entry => new
                {
                    status = entry.Value.Status.ToString(),
                    duration_ms = Math.Round(entry.Value.Duration.TotalMilliseconds, 1),
                }),
        };
        return JsonSerializer.SerializeAsync(context.Response.Body, body, cancellationToken: context.RequestAborted);
    }
}
