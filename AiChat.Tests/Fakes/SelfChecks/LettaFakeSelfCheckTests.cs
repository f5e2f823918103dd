using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiChat.Tests.Agents;

namespace AiChat.Tests.Fakes.SelfChecks;

/// <summary>Self-checks of FakeLetta's agent messages endpoint against <c>contracts/letta.md</c>, over raw HTTP (no AiChat code under test).</summary>
[Trait("Category", "FakeSelfCheck")]
public sealed class LettaFakeSelfCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("python-requests/2.32.3", HttpStatusCode.UnprocessableEntity)]
    [InlineData("AiChat/1.0", HttpStatusCode.UnprocessableEntity)]
    [InlineData("letta-client/1.0.0", HttpStatusCode.OK)]
    [InlineData(null, HttpStatusCode.OK)]
    public async Task TheFakeTreatsAForeignUserAgentAsALegacyClientThatCannotStream(string? userAgent, HttpStatusCode expected)
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = new HttpClient { BaseAddress = rig.Letta.Url };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/agents/{agent.ExternalId}/messages")
        {
            Content = new StringContent("""{"messages":[{"role":"user","content":"hi"}],"streaming":true,"stream_tokens":true}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", rig.Letta.Password);
        if (userAgent is not null)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        }

        using var response = await http.SendAsync(request, Ct);

        Assert.Equal(expected, response.StatusCode);
    }

    [Fact]
    public async Task TheFakeAnswersASendWithoutStreamingWithWholeMessagesStopReasonAndUsage()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var http = new HttpClient { BaseAddress = rig.Letta.Url };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/agents/{agent.ExternalId}/messages")
        {
            Content = new StringContent("""{"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", rig.Letta.Password);

        using var response = await http.SendAsync(request, Ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var messages = body.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["reasoning_message", "assistant_message"], messages.Select(m => m.GetProperty("message_type").GetString()));
        Assert.Equal(ChatCompletionsResponder.DefaultText, messages[1].GetProperty("content").GetString());
        Assert.Equal("end_turn", body.GetProperty("stop_reason").GetProperty("stop_reason").GetString());
        Assert.Equal(120, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }
}
