using System.Net;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Gateway;

/// <summary>
/// A request that never reached an API instance is retried on the other: with the health checks switched off, so
/// the killed instance stays in the rotation, every request after the kill is still answered — reads and a chat
/// message with a body alike — and the message is stored once.
/// </summary>
[Trait("Category", "Gateway")]
public sealed class GatewayRetryTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ARequestThatNeverReachedAKilledInstanceIsAnsweredByTheOther()
    {
        await using var replicas = await ApiReplicas.StartAsync(postgres);
        await using var gateway = new GatewayFactory(replicas.First.Address)
            .WithSetting($"Services:{ResourceNames.Api}:http:1", replicas.Second.Address.ToString())
            .WithSetting("ReverseProxy:Clusters:api:LoadBalancingPolicy", "RoundRobin")
            .WithSetting("ReverseProxy:Clusters:api:HealthCheck:Active:Enabled", "false")
            .WithSetting("ReverseProxy:Clusters:api:HealthCheck:Passive:Enabled", "false");
        using var client = gateway.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await Conversations.CreateIdAsync(client, pair.AccessToken);

        replicas.First.Kill();

        // Round robin sends every other request to the dead instance; each of those is retried on the live one.
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 20; i++)
        {
            statuses.Add((await client.GetWithTokenAsync("/api/v1/models", pair.AccessToken)).StatusCode);
        }

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.OK, 20), statuses);
        for (var i = 0; i < 4; i++)
        {
            var answer = await Conversations.AnswerAsync(client, pair.AccessToken, conversation, $"still there {i}?");
            Assert.Equal($"still there {i}?", answer.GetProperty("user_message").GetProperty("content").GetString());
        }

        var messages = await Conversations.MessagesAsync(client, pair.AccessToken, conversation);
        Assert.Equal(["still there 3?", "still there 2?", "still there 1?", "still there 0?"], messages.Where(m => m.GetProperty("role").GetString() == "user").Select(m => m.GetProperty("content").GetString()));
    }
}
