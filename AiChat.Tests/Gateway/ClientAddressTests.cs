using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiChat.Tests.Gateway;

/// <summary>
/// The client address behind the gateway, on SQLite and Postgres: a client's own <c>X-Forwarded-For</c>,
/// <c>Forwarded</c> and <c>X-Real-IP</c> never become the API's notion of who is calling (so the per-address auth limit
/// holds through the gateway), while a proxy named in <c>Gateway:KnownProxies</c> (a second loopback address, 127.0.0.2,
/// plays the load balancer) is believed about the one address it reports.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class ClientAddressTests(PostgresServer postgres)
{
    private const int PerAddress = 5;
    private static readonly IPAddress LoadBalancer = IPAddress.Parse("127.0.0.2");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LoginsWithMadeUpForwardingHeadersStillShareOnePerAddressLimit(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(Limited(), provider));
        using var client = system.GatewayClient();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 1; i <= PerAddress + 3; i++)
        {
            // Each attempt claims to come from somewhere else, in every header a proxy might use, for a new email.
            using var login = Login(Accounts.NewEmail());
            login.Headers.Add("X-Forwarded-For", $"203.0.113.{i}");
            login.Headers.Add("Forwarded", $"for=198.51.100.{i};proto=https");
            login.Headers.Add("X-Real-IP", $"192.0.2.{i}");
            last = await client.SendAsync(login, Ct);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, PerAddress), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], statuses);
        await ApiPipelineTests.AssertProblemAsync(last!, HttpStatusCode.TooManyRequests, "over_request_rate_limit");
        Assert.Equal(TimeSpan.FromMinutes(1), last!.Headers.RetryAfter?.Delta);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LoginsThroughAKnownProxyAreLimitedPerAddressThatProxyReports(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(Limited(), provider), gateway => gateway.WithSetting("Gateway:KnownProxies:0", LoadBalancer.ToString()));
        using var direct = system.GatewayClient();
        using var balancer = Loopback.ClientFrom(LoadBalancer, system.GatewayAddress);

        // This machine's own address uses up its allowance, claiming another address to no avail.
        var fromHere = new List<HttpStatusCode>();
        for (var i = 0; i <= PerAddress; i++)
        {
            using var login = Login(Accounts.NewEmail());
            login.Headers.Add("X-Forwarded-For", "198.51.100.23");
            fromHere.Add((await direct.SendAsync(login, Ct)).StatusCode);
        }

        // The balancer's clients each have their own: what the balancer appended (the last entry) is the address.
        var firstClient = new List<HttpStatusCode>();
        for (var i = 0; i <= PerAddress; i++)
        {
            using var login = Login(Accounts.NewEmail());
            login.Headers.Add("X-Forwarded-For", $"10.9.8.{i}, 198.51.100.23");
            firstClient.Add((await balancer.SendAsync(login, Ct)).StatusCode);
        }

        using var secondLogin = Login(Accounts.NewEmail());
        secondLogin.Headers.Add("X-Forwarded-For", "198.51.100.24");
        var secondClient = await balancer.SendAsync(secondLogin, Ct);

        HttpStatusCode[] allowanceThenRefused = [.. Enumerable.Repeat(HttpStatusCode.Unauthorized, PerAddress), HttpStatusCode.TooManyRequests];
        Assert.Equal(allowanceThenRefused, fromHere);
        Assert.Equal(allowanceThenRefused, firstClient);
        Assert.Equal(HttpStatusCode.Unauthorized, secondClient.StatusCode);
    }

    // This and the next read no store: a test endpoint echoes what the API saw of the client.
    [Fact]
    public async Task TheApiSeesTheAddressTheGatewaySawAndNoneOfTheClientsClaims()
    {
        await using var system = RunningSystem.Start(WithClientEcho(new ApiFactory()));
        using var client = system.GatewayClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/client");
        request.Headers.Add("X-Forwarded-For", "203.0.113.9, 203.0.113.10");
        request.Headers.Add("Forwarded", "for=198.51.100.9");
        request.Headers.Add("X-Real-IP", "192.0.2.9");
        request.Headers.Add("X-Original-For", "192.0.2.10:1234");
        request.Headers.Add("X-Forwarded-Proto", "https");

        var seen = await (await client.SendAsync(request, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);

        Assert.Equal("127.0.0.1", seen.GetProperty("remote_ip").GetString());
        Assert.Equal("http", seen.GetProperty("scheme").GetString());
        // The API consumed the one X-Forwarded-For entry the gateway set; nothing else was passed on.
        Assert.Equal("", seen.GetProperty("x_forwarded_for").GetString());
        Assert.Equal("", seen.GetProperty("forwarded").GetString());
        Assert.Equal("", seen.GetProperty("x_real_ip").GetString());
        Assert.StartsWith("127.0.0.1:", seen.GetProperty("x_original_for").GetString());
    }

    [Fact]
    public async Task AKnownProxyIsBelievedAboutTheLastAddressItReportsAndItsScheme()
    {
        await using var system = RunningSystem.Start(WithClientEcho(new ApiFactory()), gateway => gateway.WithSetting("Gateway:KnownProxies:0", LoadBalancer.ToString()));
        using var balancer = Loopback.ClientFrom(LoadBalancer, system.GatewayAddress);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/test/client");
        request.Headers.Add("X-Forwarded-For", "203.0.113.9, 198.51.100.23");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Real-IP", "192.0.2.9");

        var seen = await (await balancer.SendAsync(request, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);

        Assert.Equal("198.51.100.23", seen.GetProperty("remote_ip").GetString());
        Assert.Equal("https", seen.GetProperty("scheme").GetString());
        Assert.Equal("", seen.GetProperty("x_forwarded_for").GetString());
        Assert.Equal("", seen.GetProperty("x_real_ip").GetString());
    }

    private static ApiFactory Limited() => new ApiFactory().WithSetting("Auth:RateLimits:PerClientAddress", PerAddress.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static ApiFactory WithClientEcho(ApiFactory api) => api.WithEndpoints(endpoints =>
        endpoints.MapGet("/api/v1/test/client", (HttpContext context) => TypedResults.Ok(new
        {
            remote_ip = context.Connection.RemoteIpAddress?.ToString(),
            scheme = context.Request.Scheme,
            x_forwarded_for = context.Request.Headers["X-Forwarded-For"].ToString(),
            forwarded = context.Request.Headers["Forwarded"].ToString(),
            x_real_ip = context.Request.Headers["X-Real-IP"].ToString(),
            x_original_for = context.Request.Headers["X-Original-For"].ToString(),
        })));

    private static HttpRequestMessage Login(string email) =>
        new(HttpMethod.Post, "/api/v1/auth/login") { Content = JsonContent.Create(new { email, password = "not the password" }) };

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
