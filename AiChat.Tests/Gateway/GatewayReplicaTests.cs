using System.Net;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Gateway;

/// <summary>
/// The gateway in front of two API processes on one Postgres: when one is killed, YARP's active and passive health
/// checks take it out of the rotation within seconds and every request is answered by the other.
/// </summary>
[Trait("Category", "Gateway")]
public sealed class GatewayReplicaTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AKilledReplicaLeavesTheRotationWithinSecondsAndTheOtherAnswersEveryRequest()
    {
        await using var replicas = await ApiReplicas.StartAsync(postgres);
        await using var gateway = new GatewayFactory(replicas.First.Address)
            .WithSetting($"Services:{ResourceNames.Api}:http:1", replicas.Second.Address.ToString())
            .WithSetting("ReverseProxy:Clusters:api:HealthCheck:Active:Interval", "00:00:01");
        using var client = gateway.CreateClient();
        var pair = await client.RegisterAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/models", pair.AccessToken)).StatusCode);

        replicas.First.Kill();

        // Out of the rotation within seconds: from some point, every request is answered.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var inARow = 0;
        while (inARow < 20)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the killed replica was still in the rotation after 20 s ({inARow} answered in a row)");
            var response = await client.GetWithTokenAsync("/api/v1/models", pair.AccessToken);
            inARow = response.StatusCode == HttpStatusCode.OK ? inARow + 1 : 0;
            if (inARow == 0)
            {
                await Task.Delay(100, Ct); // the next health probe is due within a second
            }
        }

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 50; i++)
        {
            statuses.Add((await client.GetWithTokenAsync("/api/v1/models", pair.AccessToken)).StatusCode);
        }

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.OK, status));
    }
}
