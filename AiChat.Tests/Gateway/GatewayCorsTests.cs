using System.Net;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiChat.Tests.Gateway;

/// <summary>
/// CORS for a separate frontend listed in <c>Gateway:Cors:AllowedOrigins</c>: the gateway answers the preflight itself
/// with exactly the methods and headers a frontend needs, exposes the headers it must read, allows no credentials, and
/// gives a refused origin no CORS header at all.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class GatewayCorsTests : IAsyncLifetime
{
    private const string Allowed = "https://frontend.example";
    private const string Refused = "https://evil.example";

    private int _apiOptionsHits;
    private RunningSystem _system = null!;

    public ValueTask InitializeAsync()
    {
        var api = new ApiFactory().WithEndpoints(endpoints =>
        {
            endpoints.MapGet("/api/v1/test/created", (HttpContext context) =>
            {
                context.Response.Headers.RetryAfter = "7";
                return TypedResults.Created("/api/v1/test/created/1", new { id = 1 });
            });
            endpoints.MapMethods("/api/v1/test/created", ["OPTIONS"], () =>
            {
                Interlocked.Increment(ref _apiOptionsHits);
                return TypedResults.Ok();
            });
        });
        _system = RunningSystem.Start(api, gateway => gateway
            .WithSetting("Gateway:Cors:AllowedOrigins:0", Allowed)
            .WithSetting("Gateway:Cors:AllowedOrigins:1", "http://localhost:5173"));
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _system.DisposeAsync();

    [Fact]
    public async Task APreflightFromAnAllowedOriginIsAnsweredByTheGatewayWithExactlyWhatAFrontendNeeds()
    {
        using var client = _system.GatewayClient();

        var response = await client.SendAsync(Preflight(Allowed, "POST", "authorization,content-type,idempotency-key,last-event-id,accept"), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Allowed, Single(response, "Access-Control-Allow-Origin"));
        Assert.Equal("GET,POST,PUT,PATCH,DELETE", Single(response, "Access-Control-Allow-Methods"));
        Assert.Equal("Authorization,Content-Type,Idempotency-Key,Last-Event-ID,Accept,X-AiChat-Conversation,Mcp-Session-Id,Mcp-Protocol-Version", Single(response, "Access-Control-Allow-Headers"));
        Assert.Equal("600", Single(response, "Access-Control-Max-Age"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"), "bearer tokens only: credentials are never allowed");
        Assert.Equal(0, Volatile.Read(ref _apiOptionsHits));
    }

    [Theory]
    [InlineData(Refused)]
    [InlineData("https://frontend.example.evil.example")]
    [InlineData("http://frontend.example")]
    [InlineData("null")]
    public async Task APreflightFromAnyOtherOriginGetsNoCorsHeaders(string origin)
    {
        using var client = _system.GatewayClient();

        var response = await client.SendAsync(Preflight(origin, "POST", "authorization,content-type"), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        AssertNoCorsHeaders(response);
        Assert.Equal(0, Volatile.Read(ref _apiOptionsHits));
    }

    [Fact]
    public async Task AnAllowedOriginMayReadTheHeadersItNeedsOnAProxiedAnswer()
    {
        using var client = _system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/created");
        request.Headers.Add("Origin", Allowed);

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Allowed, Single(response, "Access-Control-Allow-Origin"));
        Assert.Equal("Retry-After,Location,X-Turn-Id,WWW-Authenticate,X-AiChat-Conversation,Mcp-Session-Id", Single(response, "Access-Control-Expose-Headers"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Credentials"));
        Assert.Contains("Origin", response.Headers.Vary);
    }

    [Fact]
    public async Task TheGatewaysOwnProblemsCarryCorsHeadersForAnAllowedOriginToo()
    {
        using var client = _system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/internal/llm/v1/models");
        request.Headers.Add("Origin", "http://localhost:5173");

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("http://localhost:5173", Single(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task ARefusedOriginGetsTheAnswerButNoCorsHeadersSoItsPageCannotReadIt()
    {
        using var client = _system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/created");
        request.Headers.Add("Origin", Refused);

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        AssertNoCorsHeaders(response);
    }

    private static HttpRequestMessage Preflight(string origin, string method, string headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, "/api/v1/test/created");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        request.Headers.Add("Access-Control-Request-Headers", headers);
        return request;
    }

    private static string Single(HttpResponseMessage response, string header) =>
        Assert.Single(response.Headers.TryGetValues(header, out var values) ? values : []);

    private static void AssertNoCorsHeaders(HttpResponseMessage response) =>
        Assert.DoesNotContain(response.Headers, header => header.Key.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
}
