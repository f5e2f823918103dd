using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiChat.Tests.Billing;
using Microsoft.Extensions.AI;

namespace AiChat.Tests.Fakes.SelfChecks;

/// <summary>Self-checks of FakeLiteLlm's liveliness and metered chat endpoint against <c>contracts/litellm.md</c>, through a real OpenAI client (no AiChat code under test).</summary>
[Trait("Category", "FakeSelfCheck")]
public sealed class LiteLlmFakeSelfCheckTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LivelinessAnswersImAlive()
    {
        await using var liteLlm = await FakeLiteLlm.StartAsync();
        using var http = new HttpClient { BaseAddress = liteLlm.Url };

        var text = await http.GetStringAsync("health/liveliness", Ct);

        Assert.Equal("I'm alive!", JsonSerializer.Deserialize<string>(text));
    }


    [Fact]
    public async Task AStreamedCallWithTheUsersKeyYieldsTheTextAndAUsageWithItsCost()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var (userId, key) = await rig.ProvisionAsync(10m);
        rig.LiteLlm.QueueReply("Hello Ana, nice to meet you!", promptTokens: 1200, completionTokens: 9);
        using var chat = LiteLlmClientTests.ChatClientFor(rig.LiteLlm, key);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in chat.GetStreamingResponseAsync("Hi, I'm Ana", new ChatOptions { MaxOutputTokens = 100 }, Ct))
        {
            updates.Add(update);
        }

        Assert.True(updates.Count(u => u.Text.Length > 0) > 1, "the reply arrives in several deltas");
        Assert.Equal("Hello Ana, nice to meet you!", string.Concat(updates.Select(u => u.Text)));
        var withUsage = Assert.Single(updates, u => u.Contents.OfType<UsageContent>().Any());
        var usage = withUsage.Contents.OfType<UsageContent>().Single().Details;
        Assert.Equal((1200L, 9L), (usage.InputTokenCount, usage.OutputTokenCount));
        var cost = rig.LiteLlm.CostOf(1200, 9);
        Assert.Equal(cost, LiteLlmClientTests.CostOf(withUsage));
        Assert.Equal(cost, rig.LiteLlm.User(userId)!.Spend);

        var request = rig.LiteLlm.Requests.Single(r => r.Path == "/v1/chat/completions");
        Assert.Equal($"Bearer {key}", request.Authorization);
        var body = JsonNode.Parse(request.Body)!;
        Assert.True(body["stream"]!.GetValue<bool>());
        Assert.True(body["stream_options"]!["include_usage"]!.GetValue<bool>());
    }


    [Fact]
    public async Task ANonStreamedCallAnswersWithUsageAndItsCostInTheHeaders()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var (userId, key) = await rig.ProvisionAsync(10m);
        rig.LiteLlm.QueueReply("Hi there.", promptTokens: 500, completionTokens: 3);
        rig.LiteLlm.QueueReply("Hi again.", promptTokens: 40, completionTokens: 3);
        using var chat = LiteLlmClientTests.ChatClientFor(rig.LiteLlm, key);
        using var http = new HttpClient { BaseAddress = rig.LiteLlm.Url };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);

        var response = await chat.GetResponseAsync("Hi", cancellationToken: Ct);
        using var raw = await http.SendAsync(request, Ct);

        Assert.Equal("Hi there.", response.Text);
        Assert.Equal((500L, 3L), (response.Usage!.InputTokenCount, response.Usage.OutputTokenCount));
        Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
        var cost = decimal.Parse(raw.Headers.GetValues("x-litellm-response-cost").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(rig.LiteLlm.CostOf(40, 3), cost);
        Assert.True(Guid.TryParse(raw.Headers.GetValues("x-litellm-call-id").Single(), out _));
        Assert.Equal(rig.LiteLlm.CostOf(500, 3) + cost, rig.LiteLlm.User(userId)!.Spend);
    }
}
