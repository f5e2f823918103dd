using System.Net;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The circuit breaker of one streaming upstream (<c>Resilience:{name}</c>): the defaults open it when half of at least
/// 5 calls within 30 s failed, keep it open 15 s, then let one probe call through (half-open); the probe's success
/// closes it. An attempt that has no response headers within <see cref="AttemptTimeout"/> counts as a failure.
/// </summary>
public sealed class UpstreamBreakerOptions
{
    public const string Section = "Resilience";

    public double FailureRatio { get; set; } = 0.5;

    public int MinimumThroughput { get; set; } = 5;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long one attempt may wait for the response headers (the body then streams without a limit).</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// What the API knows about one upstream's breaker: its state (from Polly's <see cref="CircuitBreakerStateProvider"/>)
/// and, while it is open, how long until it lets a probe through — the <c>Retry-After</c> of a refused message.
/// </summary>
public sealed class UpstreamCircuit(string name, TimeProvider time)
{
    private long _halfOpensAtTicks;

    public string Name { get; } = name;

    public CircuitBreakerStateProvider StateProvider { get; } = new();

    public bool IsOpen => StateProvider.CircuitState is CircuitState.Open or CircuitState.Isolated;

    /// <summary>Whole seconds (at least 1) until the breaker lets a probe through; null while calls may go through.</summary>
    public int? RetryAfterSeconds
    {
        get
        {
            var left = new DateTimeOffset(Interlocked.Read(ref _halfOpensAtTicks), TimeSpan.Zero) - time.GetUtcNow();
            // Polly half-opens on the next call after the break: from then on a message may be that probe.
            return IsOpen && left > TimeSpan.Zero ? Math.Max(1, (int)Math.Ceiling(left.TotalSeconds)) : null;
        }
    }

    internal void Opened(TimeSpan breakDuration) =>
        Interlocked.Exchange(ref _halfOpensAtTicks, (time.GetUtcNow() + breakDuration).UtcTicks);

    /// <summary>Upstream failures only: 5xx, 408, timeouts and connection errors; a 4xx (bad request, key, budget, rate limit) says the upstream works.</summary>
    public static bool IsUpstreamFailure(Outcome<HttpResponseMessage> outcome) => outcome switch
    {
        { Result: { } response } => (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.RequestTimeout,
        { Exception: HttpRequestException or TimeoutRejectedException } => true,
        _ => false,
    };
}

/// <summary>Degraded (never Unhealthy: the API still serves history, memory and other runtimes) while the breaker is open.</summary>
public sealed class UpstreamCircuitHealthCheck(UpstreamCircuit circuit) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(circuit.RetryAfterSeconds is not null
            ? new HealthCheckResult(context.Registration.FailureStatus, $"{circuit.Name}: circuit open")
            : HealthCheckResult.Healthy(circuit.Name));
}

/// <summary>A call refused because the upstream's breaker is open: nothing was sent; try again after <see cref="RetryAfterSeconds"/>.</summary>
public sealed class UpstreamUnavailableException(string upstream, int retryAfterSeconds, Exception inner)
    : BrokenCircuitException($"The {upstream} circuit is open; calls resume in {retryAfterSeconds} s.", inner)
{
    public string Upstream { get; } = upstream;

    public int RetryAfterSeconds { get; } = retryAfterSeconds;

    /// <summary>The refusal in an exception or its inner ones (clients wrap what their transport throws).</summary>
    public static UpstreamUnavailableException? In(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is UpstreamUnavailableException refused)
            {
                return refused;
            }
        }

        return null;
    }
}

/// <summary>Outside the resilience handler: turns Polly's open-circuit refusal into one that says when to try again.</summary>
internal sealed class OpenCircuitHandler(UpstreamCircuit circuit) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await base.SendAsync(request, cancellationToken);
        }
        catch (BrokenCircuitException ex) when (ex is not UpstreamUnavailableException)
        {
            throw new UpstreamUnavailableException(circuit.Name, circuit.RetryAfterSeconds ?? 1, ex);
        }
    }
}

/// <summary>
/// An optional dependency's own health endpoint, asked with a short cut-off: Degraded (the registration's failure
/// status) when it does not answer with a success, so <c>/health</c> tells an operator without taking the API out of rotation.
/// </summary>
public sealed class UpstreamProbeHealthCheck(IHttpClientFactory clients, Func<Uri> url) : IHealthCheck
{
    public const string ClientName = "health-probe";

    private static readonly TimeSpan CutOff = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CutOff);
        try
        {
            using var response = await clients.CreateClient(ClientName).GetAsync(url(), timeout.Token);
            return response.IsSuccessStatusCode
                ? HealthCheckResult.Healthy()
                : new HealthCheckResult(context.Registration.FailureStatus, $"answered {(int)response.StatusCode}");
        }
        catch (Exception ex) when (ex is HttpRequestException or ExecutionRejectedException
            || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "unreachable");
        }
    }
}
