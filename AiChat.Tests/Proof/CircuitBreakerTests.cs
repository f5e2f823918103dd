using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.Hosting;

namespace AiChat.Tests.Proof;

/// <summary>
/// The LLM and Letta clients' circuit breakers, through the HTTP API: upstream failures open it, a new message is then refused
/// with 503 <c>upstream_unavailable</c> and <c>Retry-After</c> before anything is stored (on both chat endpoints and
/// <c>/v1/chat/completions</c>), <c>/health</c> is Degraded, and once the break is over one probe call closes it by itself.
/// </summary>
[Trait("Category", "Faults")]
public sealed class CircuitBreakerTests(PostgresServer postgres)
{
    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(3);

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnOpenBreakerRefusesNewMessagesBeforeStoringAnythingAndClosesByItselfWhenTheUpstreamRecovers(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-breaker-" + Guid.NewGuid().ToString("N")));
        await using var api = await new DependencyFaultTests(postgres).OnAsync(provider, Breaking(DependencyFaultTests.LlmApi(llm)));
        using var client = api.CreateClient();
        var user = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, user.AccessToken);
        var key = (await ApiKeys.CreateAsync(client, user.AccessToken)).Key;

        // 4xx answers say the upstream works: they never open the breaker.
        llm.DefaultReply = FakeReply.Error(400, "invalid_request_error", "bad");
        await ApiPipelineTests.AssertProblemAsync(await SendAsync(client, user.AccessToken, "refused 1"), HttpStatusCode.BadGateway, LlmErrors.Rejected);
        await ApiPipelineTests.AssertProblemAsync(await SendAsync(client, user.AccessToken, "refused 2"), HttpStatusCode.BadGateway, LlmErrors.Rejected);
        Assert.Equal("Healthy", await HealthAsync(client));

        // Two upstream failures, with the two refusals half of the calls (Resilience:llm:MinimumThroughput 2, FailureRatio 0.5), open it.
        llm.DefaultReply = FakeReply.Error(503, "server_error", "overloaded");
        await ApiPipelineTests.AssertProblemAsync(await SendAsync(client, user.AccessToken, "first failure"), HttpStatusCode.BadGateway, LlmErrors.Failed);
        await ApiPipelineTests.AssertProblemAsync(await SendAsync(client, user.AccessToken, "second failure"), HttpStatusCode.BadGateway, LlmErrors.Failed);
        var upstreamCalls = llm.Requests.Count;
        var stored = (await ChatTests.HistoryAsync(client, user.AccessToken, 50)).Count;

        var refused = await SendAsync(client, user.AccessToken, "while open");
        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable, "upstream_unavailable");
        var retryAfter = refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero;
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(1), BreakDuration);
        var conversation = await ConversationRequests.DefaultAsync(client, user.AccessToken);
        var viaConversation = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/conversations/{conversation}/messages", user.AccessToken, new { content = "while open" });
        await ApiPipelineTests.AssertProblemAsync(viaConversation, HttpStatusCode.ServiceUnavailable, "upstream_unavailable");
        Assert.NotNull(viaConversation.Headers.RetryAfter?.Delta);
        var viaOpenAi = await OpenAiAsync(client, key, "while open");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, viaOpenAi.StatusCode);
        Assert.Equal("upstream_unavailable", (await viaOpenAi.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("error").GetProperty("code").GetString());
        Assert.NotNull(viaOpenAi.Headers.RetryAfter?.Delta);
        Assert.Equal(stored, (await ChatTests.HistoryAsync(client, user.AccessToken, 50)).Count); // nothing stored
        Assert.Equal(upstreamCalls, llm.Requests.Count); // nothing sent
        Assert.Equal(0m, (await DependencyFaultTests.BudgetAsync(client, user.AccessToken)).GetProperty("reserved_usd").GetDecimal());
        Assert.Equal("Degraded", await HealthAsync(client));

        // The upstream recovers: after the Retry-After, the next message is the probe that closes the breaker.
        llm.DefaultReply = FakeReply.Text("recovered");
        await ChatTests.WaitForAsync(async () => await HealthAsync(client) == "Healthy" ? "" : null, BreakDuration + TimeSpan.FromSeconds(5));
        var answered = await SendAsync(client, user.AccessToken, "after the break");
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Equal("recovered", (await answered.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(client, user.AccessToken, "and again")).StatusCode);
        Assert.Equal("Healthy", await HealthAsync(client));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LettaDownOpensItsBreakerThenMessagesAreRefusedBeforeStoringAnythingUntilItIsBack(StoreProvider provider)
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var relay = TcpRelay.Start(letta.Url);
        await using var model = await ChatCompletionsResponder.StartAsync();
        await using var api = await new DependencyFaultTests(postgres).OnAsync(provider, new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", relay.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", model.BaseUrl)
            .WithSetting("Resilience:letta:MinimumThroughput", "2")
            .WithSetting("Resilience:letta:FailureRatio", "0.5")
            .WithSetting("Resilience:letta:SamplingDuration", "00:01:00")
            .WithSetting("Resilience:letta:BreakDuration", BreakDuration.ToString("c")));
        using var client = api.CreateClient();
        var user = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, user.AccessToken);

        // Letta stops answering: the first message fails at it (its connection refused, retried, failed again), and
        // those failures open Letta's breaker.
        relay.Down();
        var failed = await SendAsync(client, user.AccessToken, "is anyone there?");
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var stored = (await ChatTests.HistoryAsync(client, user.AccessToken, 50)).Count;
        Assert.Equal(2, stored); // that message, and its failed answer

        var refused = await SendAsync(client, user.AccessToken, "while open");
        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable, "upstream_unavailable");
        Assert.InRange(refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero, TimeSpan.FromSeconds(1), BreakDuration);
        Assert.Equal(stored, (await ChatTests.HistoryAsync(client, user.AccessToken, 50)).Count); // nothing stored
        Assert.Equal("Degraded", await HealthAsync(client));

        // Letta is back: once the break is over, the next message goes through and closes the breaker.
        relay.Up();
        model.Reply("Letta is back.", prompt: 20, completion: 4);
        await ChatTests.WaitForAsync(async () => await HealthAsync(client) == "Healthy" ? "" : null, BreakDuration + TimeSpan.FromSeconds(10));
        var answered = await SendAsync(client, user.AccessToken, "and now?");
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Equal("Letta is back.", (await answered.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("assistant_message").GetProperty("content").GetString());
    }

    [Fact]
    public void AnOpenBreakerMetByARunningTurnIsItsFailureCodeWithTheWait()
    {
        var refused = new UpstreamUnavailableException("llm", 7, new Polly.CircuitBreaker.BrokenCircuitException());

        var failure = LlmErrors.Describe(new System.ClientModel.ClientResultException("wrapped", null, refused));

        Assert.Equal((503, "upstream_unavailable"), (failure.Status, failure.Code));
        Assert.Equal(7, failure.Figures!["retry_after_seconds"]);
    }

    private static ApiFactory Breaking(ApiFactory api) => api
        .WithSetting("Resilience:llm:MinimumThroughput", "2")
        .WithSetting("Resilience:llm:FailureRatio", "0.5")
        .WithSetting("Resilience:llm:SamplingDuration", "00:01:00")
        .WithSetting("Resilience:llm:BreakDuration", BreakDuration.ToString("c"));

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, string token, string content) =>
        client.SendAsync(ChatTests.Json(SseReader.Send(token, content)), TestContext.Current.CancellationToken);

    private static Task<HttpResponseMessage> OpenAiAsync(HttpClient client, string key, string content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content } } }),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        return client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    internal static async Task<string?> HealthAsync(HttpClient client)
    {
        var response = await client.GetAsync(Extensions.HealthEndpointPath, TestContext.Current.CancellationToken);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("status").GetString();
    }
}
