using System.Net;
using System.Text;
using System.Text.Json;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiChat.Tests.Gateway;

/// <summary>
/// The embedded system end to end: API and gateway as real servers on loopback, real HTTP between them. On one store:
/// these exercise the gateway with test endpoints, and none of them reads or writes the store.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class GatewayTests : IAsyncLifetime
{
    private readonly TaskCompletionSource _releaseSecondEvent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _internalHits;
    private volatile bool _upstreamFinished;
    private RunningSystem _system = null!;

    public ValueTask InitializeAsync()
    {
        var api = new ApiFactory()
            .WithSetting("Api:MaxRequestBodyBytes", "4096")
            .WithEndpoints(endpoints =>
            {
                endpoints.MapGet("/api/v1/test/stream", StreamTwoEventsAsync);
                endpoints.MapGet("/api/v1/test/request", (HttpContext context) => TypedResults.Ok(new
                {
                    host = context.Request.Host.ToString(),
                    scheme = context.Request.Scheme,
                    forwarded_for = context.Request.Headers["X-Original-For"].ToString(),
                }));
                endpoints.MapPost("/api/v1/test/echo", (JsonElement body) => TypedResults.Ok(body));
                endpoints.Map("/internal/{**rest}", () =>
                {
                    Interlocked.Increment(ref _internalHits);
                    return TypedResults.Ok();
                });
            });
        _system = RunningSystem.Start(api);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _releaseSecondEvent.TrySetResult();
        await _system.DisposeAsync();
    }

    [Fact]
    public async Task HealthThroughTheGatewayIsTheApisReadiness()
    {
        using var client = _system.GatewayClient();

        var response = await client.GetAsync("/health", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal("Healthy", json.RootElement.GetProperty("status").GetString());
        Assert.True(json.RootElement.GetProperty("checks").TryGetProperty("store", out _), "the API's store check answers through the gateway");
    }

    [Fact]
    public async Task ServerSentEventsPassThroughUnbuffered()
    {
        using var client = _system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/stream");
        request.Headers.Accept.ParseAdd("text/event-stream");

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);

        await using var stream = await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));

        var first = await ReadEventAsync(reader, timeout.Token);
        Assert.Contains("event: first", first);
        Assert.False(_upstreamFinished, "the first event arrived while the API was still holding the response open");

        _releaseSecondEvent.SetResult();
        var second = await ReadEventAsync(reader, timeout.Token);
        Assert.Contains("event: second", second);
    }

    [Fact]
    public async Task InternalRoutesAreNeverForwarded()
    {
        using var client = _system.GatewayClient();

        // Sent as written: the client does not tidy the path, so the gateway sees each spelling a hostile client could use.
        foreach (var path in new[]
        {
            "/internal/llm/v1/chat/completions", "/internal", "/internal/", "/INTERNAL/llm/v1/models", "/Internal/other",
            "/%69nternal/llm/v1/models", "/%49NTERNAL/other", "/%2569nternal/other", "/internal%2Fllm%2Fv1%2Fmodels",
            "/api/../internal/llm/v1/models", "/api/%2e%2e/internal/other", "/api/..%2Finternal/other", "/./internal/other",
            "//internal/llm/v1/models", "///internal/other", "/api/v1/..//..//internal/other",
        })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, Raw(path)) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{path}: {(int)response.StatusCode}");
            await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.NotFound, "not_found");
        }

        Assert.Equal(0, Volatile.Read(ref _internalHits));
        using var direct = new HttpClient { BaseAddress = _system.ApiAddress };
        // Both exist on the API itself: the metering endpoint (which wants a per-user key) and the test's catch-all.
        Assert.Equal(HttpStatusCode.Unauthorized, (await direct.GetAsync("/internal/llm/v1/models", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/internal/other", TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task TheApiSeesTheHostTheClientUsed()
    {
        using var client = _system.GatewayClient();

        using var json = JsonDocument.Parse(await client.GetStringAsync("/api/v1/test/request", TestContext.Current.CancellationToken));

        Assert.Equal(_system.GatewayAddress.Authority, json.RootElement.GetProperty("host").GetString());
        Assert.Equal("http", json.RootElement.GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task ApiProblemsPassThroughTheGateway()
    {
        using var client = _system.GatewayClient();

        var response = await client.GetAsync("/api/v1/no-such-thing", TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task ABodyOverTheLimitIsAPayloadTooLargeProblem()
    {
        using var client = _system.GatewayClient();
        var body = $$"""{"text":"{{new string('x', 10_000)}}"}""";

        var response = await client.PostAsync("/api/v1/test/echo", new StringContent(body, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "payload_too_large");
    }

    [Fact]
    public async Task EveryResponseCarriesTheSecurityHeadersAndNoHstsOverHttp()
    {
        using var client = _system.GatewayClient();

        var page = await client.GetAsync("/", TestContext.Current.CancellationToken);
        var proxied = await client.GetAsync("/api/v1/test/request", TestContext.Current.CancellationToken);
        var problem = await client.GetAsync("/internal/llm/v1/models", TestContext.Current.CancellationToken);
        using var streamRequest = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/stream");
        _releaseSecondEvent.SetResult();
        var stream = await client.SendAsync(streamRequest, TestContext.Current.CancellationToken);

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.NotFound, HttpStatusCode.OK], new[] { page, proxied, problem, stream }.Select(r => r.StatusCode));
        foreach (var response in new[] { page, proxied, problem, stream })
        {
            var where = response.RequestMessage!.RequestUri!.AbsolutePath;
            Assert.True(response.Headers.TryGetValues("Content-Security-Policy", out var csp), $"{where}: no CSP");
            Assert.Equal(ContentSecurityPolicy, Assert.Single(csp));
            Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
            Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
            Assert.False(response.Headers.Contains("Strict-Transport-Security"), $"{where}: HSTS over http");
            Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"), $"{where}: CORS headers without an origin asking");
        }

        Assert.Equal("DENY", Assert.Single(page.Headers.GetValues("X-Frame-Options")));
    }

    [Fact]
    public async Task WithNoAllowedOriginsConfiguredNoFrontendIsLetIn()
    {
        using var client = _system.GatewayClient();
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/v1/auth/login");
        preflight.Headers.Add("Origin", "https://frontend.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");

        var response = await client.SendAsync(preflight, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.DoesNotContain(response.Headers, header => header.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task TheWebClientIsServedAtTheRoot()
    {
        using var client = _system.GatewayClient();

        var response = await client.GetAsync("/", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<title>AiChat</title>", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    /// <summary>The web client's policy: same-origin scripts, styles, images (and data: images), fetches; no plugins, no framing.</summary>
    internal const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>A URI kept exactly as written (no dot-segment removal, no unescaping), the way a raw HTTP client sends it.</summary>
    private Uri Raw(string path) =>
        new(_system.GatewayAddress.GetLeftPart(UriPartial.Authority) + path, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });

    private async Task StreamTwoEventsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.WriteAsync("id: 1\nevent: first\ndata: {\"n\":1}\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);

        await _releaseSecondEvent.Task.WaitAsync(TimeSpan.FromSeconds(30), context.RequestAborted);
        await context.Response.WriteAsync("id: 2\nevent: second\ndata: {\"n\":2}\n\n", context.RequestAborted);
        _upstreamFinished = true;
    }

    private static async Task<string> ReadEventAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var lines = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0 && lines.Length > 0)
            {
                return lines.ToString();
            }

            lines.AppendLine(line);
        }

        throw new EndOfStreamException($"The stream ended before a whole event: '{lines}'");
    }
}
