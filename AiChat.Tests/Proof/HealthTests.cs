using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Proof;

/// <summary>
/// <c>/health</c> with optional dependencies: Degraded (still 200, the API stays in rotation) while Letta or LiteLLM
/// does not answer its health endpoint, Healthy again once it does. (Unhealthy for a store that is down:
/// <see cref="StoreOutageTests"/>; Degraded for an open breaker: <see cref="CircuitBreakerTests"/>.)
/// </summary>
[Trait("Category", "Faults")]
public sealed class HealthTests
{
    [Fact]
    public async Task LettaDownIsDegradedAndBackIsHealthy()
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var relay = TcpRelay.Start(letta.Url);
        await using var api = new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", relay.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", "http://127.0.0.1:9/internal/llm/v1");
        using var client = api.CreateClient();

        await AssertHealthAsync(client, "Healthy", "letta", "Healthy");
        relay.Down();
        await AssertHealthAsync(client, "Degraded", "letta", "Degraded");
        relay.Up();
        await AssertHealthAsync(client, "Healthy", "letta", "Healthy");
    }

    [Fact]
    public async Task LiteLlmDownIsDegradedAndBackIsHealthy()
    {
        await using var liteLlm = await FakeLiteLlm.StartAsync(LogSink.Secret("sk-master-" + Guid.NewGuid().ToString("N")));
        await using var relay = TcpRelay.Start(liteLlm.Url);
        await using var api = new ApiFactory()
            .WithSetting("LiteLlm:BaseUrl", relay.Url.ToString())
            .WithSetting("LiteLlm:MasterKey", liteLlm.MasterKey)
            .WithSetting("Llm:Endpoint", new Uri(relay.Url, "/v1").ToString())
            .WithSetting("Llm:Model", "gpt-4o-mini");
        using var client = api.CreateClient();

        await AssertHealthAsync(client, "Healthy", "litellm", "Healthy");
        relay.Down();
        await AssertHealthAsync(client, "Degraded", "litellm", "Degraded");
        relay.Up();
        await AssertHealthAsync(client, "Healthy", "litellm", "Healthy");
    }

    private static async Task AssertHealthAsync(HttpClient client, string status, string check, string checkStatus)
    {
        var response = await client.GetAsync(Microsoft.Extensions.Hosting.Extensions.HealthEndpointPath, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // Degraded keeps the instance in rotation
        Assert.Equal(status, body.GetProperty("status").GetString());
        Assert.Equal(checkStatus, body.GetProperty("checks").GetProperty(check).GetProperty("status").GetString());
        Assert.Equal("Healthy", body.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
    }
}
