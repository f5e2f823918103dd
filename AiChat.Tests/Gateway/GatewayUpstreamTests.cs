using System.Net;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Gateway;

/// <summary>The gateway in front of an API that is not there: its own answer is a problem document with a code, not an empty 502.</summary>
[Trait("Category", "EndToEnd")]
public sealed class GatewayUpstreamTests
{
    [Fact]
    public async Task WhenTheApiDoesNotAnswerTheGatewaySaysSoInABadGatewayProblem()
    {
        await using var gateway = new GatewayFactory(new Uri($"http://127.0.0.1:{Loopback.FreePort()}"));
        using var client = gateway.CreateClient();

        var response = await client.GetAsync("/api/v1/auth/me", TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.BadGateway, "bad_gateway");
        Assert.Equal(GatewayTests.ContentSecurityPolicy, Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
    }
}
