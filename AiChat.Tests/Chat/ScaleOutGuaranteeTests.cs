using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiChat.Api.Llm;
using AiChat.Tests.Api;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;

namespace AiChat.Tests.Chat;

/// <summary>
/// Two API processes on one Postgres behind one gateway (round robin, so requests alternate between them), each with
/// a data folder of its own and the shared secrets from configuration, as <c>--Parameters:api-replicas 2</c> runs
/// them: what holds for one instance holds for the pair.
/// </summary>
[Trait("Category", "Chat")]
public sealed class ScaleOutGuaranteeTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ATokenMintedByOneInstanceIsAcceptedByTheOtherWithoutASharedDataFolder()
    {
        await using var replicas = await ApiReplicas.StartAsync(postgres);
        using var one = replicas.First.Client();
        using var other = replicas.Second.Client();

        var pair = await one.RegisterAsync();

        var me = await other.GetWithTokenAsync("/api/v1/user/profile", pair.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Equal(pair.UserId, (await me.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid());
        // The second's key ring holds the same public key: the one the first signs with.
        var firstKeys = await (await one.GetAsync("/.well-known/jwks.json", Ct)).Content.ReadAsStringAsync(Ct);
        Assert.Equal(firstKeys, await (await other.GetAsync("/.well-known/jwks.json", Ct)).Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task AVirtualKeyProtectedByOneInstanceIsUsedByTheOtherThroughTheSharedKeyRing()
    {
        await using var liteLlm = await FakeLiteLlm.StartAsync(LogSink.Secret("sk-master-" + Guid.NewGuid().ToString("N")));
        await using var replicas = await ApiReplicas.StartAsync(postgres, new Dictionary<string, string>
        {
            ["LiteLlm:BaseUrl"] = liteLlm.Url.ToString(),
            ["LiteLlm:MasterKey"] = liteLlm.MasterKey,
            ["Llm:Endpoint"] = new Uri(liteLlm.Url, "/v1").ToString(),
            ["Llm:Model"] = "gpt-4o-mini",
        });
        using var one = replicas.First.Client();
        using var other = replicas.Second.Client();

        // The first creates the user's LiteLLM key and stores it protected; the second has never seen it.
        var pair = await one.RegisterAsync();
        var key = LogSink.Secret(Assert.Single(liteLlm.Keys, k => k.UserId == pair.UserId.ToString()).Raw);
        liteLlm.QueueReply("Hello from the other instance", promptTokens: 10, completionTokens: 5);

        var response = await other.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hi")), Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello from the other instance", (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Contains(liteLlm.Requests, r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal) && r.Authorization == $"Bearer {key}");
    }

    [Fact]
    public async Task OneTurnAtATimePerConversationHoldsAcrossInstances()
    {
        await using var replicas = await ApiReplicas.StartAsync(postgres, new Dictionary<string, string> { ["Llm:Offline:WordDelay"] = "00:00:00.1" });
        await using var gateway = Behind(replicas);
        using var client = gateway.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await Conversations.CreateIdAsync(client, pair.AccessToken);

        // Ten messages at once to one conversation, five reaching each instance.
        var start = new TaskCompletionSource();
        var sends = Enumerable.Range(0, 10).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return await Conversations.SendAsync(client, pair.AccessToken, conversation, $"message {i}");
        })).ToList();
        start.SetResult();
        var responses = await Task.WhenAll(sends);

        var answered = Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        var refused = responses.Where(r => r != answered).ToList();
        Assert.Equal(9, refused.Count);
        foreach (var response in refused)
        {
            await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.Conflict, "conversation_busy");
        }

        var sent = (await answered.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("user_message").GetProperty("content").GetString();
        var messages = await Conversations.MessagesAsync(client, pair.AccessToken, conversation);
        Assert.Equal(2, messages.Count);
        Assert.Equal(sent, messages[1].GetProperty("content").GetString());
        Assert.Equal(["complete", "complete"], messages.Select(m => m.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task TwoHundredConcurrentMeteredCallsOnTwoInstancesAdmitExactlyWhatTheBudgetFits()
    {
        // Each call costs exactly its worst case (6 prompt tokens counted, 200 output tokens: 120,900 nano-USD); the
        // budget of 0.001 USD fits 8 of them (967,200), not 9 (1,088,100).
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-replicas-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Delayed(FakeReply.Text("ok", promptTokens: 6, completionTokens: 200), TimeSpan.FromMilliseconds(50));
        await using var replicas = await ApiReplicas.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Llm:Endpoint"] = llm.BaseUrl.ToString(),
            ["Llm:ApiKey"] = llm.ApiKey,
            ["Llm:Model"] = "gpt-4o-mini",
            ["Llm:MaxOutputTokens"] = "200",
            ["Billing:DefaultBudgetUsd"] = "0.001",
        });
        using var one = replicas.First.Client();
        using var other = replicas.Second.Client();
        var pair = await one.RegisterAsync();
        var key = LogSink.Secret(KeysOf(replicas).KeyFor(pair.UserId));

        // The metered endpoint is internal (the gateway never forwards it): the agent runtime calls each instance directly.
        var start = new TaskCompletionSource();
        var calls = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return (await MeteredCallAsync(i % 2 == 0 ? one : other, key)).StatusCode;
        })).ToList();
        start.SetResult();
        var statuses = await Task.WhenAll(calls);

        Assert.Equal(8, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(192, statuses.Count(s => s == HttpStatusCode.PaymentRequired));
        Assert.Equal(8, llm.Requests.Count);
        foreach (var client in new[] { one, other })
        {
            var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal(8 * 120_900m / 1_000_000_000m, budget.GetProperty("spent_usd").GetDecimal());
            Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
        }
    }

    [Fact]
    public async Task TheSurvivorRecoversAKilledInstancesTurnAndTakesTheConversationsNextMessage()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-survivor-" + Guid.NewGuid().ToString("N")));
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(string.Join(" ", Enumerable.Repeat("slowly", 200)), chunkSize: 1), TimeSpan.FromMilliseconds(100)));
        await using var replicas = await ApiReplicas.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Llm:Endpoint"] = llm.BaseUrl.ToString(),
            ["Llm:ApiKey"] = llm.ApiKey,
            ["Chat:HeartbeatInterval"] = "00:00:00.5",
            ["Chat:StaleAfter"] = "00:00:03",
            ["Chat:RecoveryInterval"] = "00:00:01",
        });
        using var doomed = replicas.First.Client();
        using var survivor = replicas.Second.Client();
        var pair = await doomed.RegisterAsync();
        var conversation = await Conversations.CreateIdAsync(doomed, pair.AccessToken);

        var (_, running) = await SseReader.OpenAsync(doomed, Conversations.Send(pair.AccessToken, conversation, "tell me something long"));
        var started = (await running.NextAsync(Ct))!;
        Assert.Equal("turn.started", started.Event);
        var turnId = started.Data.GetProperty("turn_id").GetGuid();
        Assert.Equal("message.delta", (await running.NextAsync(Ct))!.Event);
        var (_, follower) = await SseReader.OpenAsync(survivor, SseReader.Resume(pair.AccessToken, turnId, started.Id));

        replicas.First.Kill();

        // The survivor finds the turn's heartbeat stale, closes it as lost, and its follower hears so.
        var followed = await follower.ReadAllAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("turn.failed", followed[^1].Event);
        Assert.Equal("turn_lost", followed[^1].Data.GetProperty("code").GetString());
        Assert.Equal(Enumerable.Range(started.Id + 1, followed.Count), followed.Select(e => e.Id));
        var messages = await Conversations.MessagesAsync(survivor, pair.AccessToken, conversation);
        Assert.Equal(["failed", "complete"], messages.Select(m => m.GetProperty("status").GetString()));
        Assert.Equal("tell me something long", messages[1].GetProperty("content").GetString());
        // Its budget hold is released with it (nobody will settle the dead instance's call), not left to expire.
        var budget = await (await survivor.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("spent_usd").GetDecimal());

        llm.Enqueue(FakeReply.Text("Still here."));
        var next = await Conversations.AnswerAsync(survivor, pair.AccessToken, conversation, "are you there?");
        Assert.Equal("Still here.", next.GetProperty("assistant_message").GetProperty("content").GetString());
    }

    /// <summary>The gateway over both instances, round robin, health checks as shipped.</summary>
    private static GatewayFactory Behind(ApiReplicas replicas) => new GatewayFactory(replicas.First.Address)
        .WithSetting($"Services:{ResourceNames.Api}:http:1", replicas.Second.Address.ToString())
        .WithSetting("ReverseProxy:Clusters:api:LoadBalancingPolicy", "RoundRobin");

    private static InternalLlmKeys KeysOf(ApiReplicas replicas) => new(
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["InternalLlm:Secret"] = replicas.InternalLlmSecret }).Build(),
        new NoHostEnvironment());

    private static Task<HttpResponseMessage> MeteredCallAsync(HttpClient client, string key)
    {
        var body = new { model = "gpt-4o-mini", max_tokens = 200, messages = new[] { new { role = "user", content = "hi" } } };
        var request = new HttpRequestMessage(HttpMethod.Post, "/internal/llm/v1/chat/completions")
        {
            Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client.SendAsync(request, Ct);
    }

    /// <summary>Never read: with <c>InternalLlm:Secret</c> given, the keys need no data folder.</summary>
    private sealed class NoHostEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";

        public string ApplicationName { get; set; } = "AiChat.Tests";

        public string ContentRootPath { get; set; } = "";

        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
