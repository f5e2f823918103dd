using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Proof;

/// <summary>
/// Issue 13's dependency faults, each through <c>POST /api/v1/chat/message</c> with <c>Accept: application/json</c>:
/// the turn's failure is then the HTTP answer itself (status + problem document with its <c>code</c>), which a client
/// reads exactly as the <c>turn.failed</c> event of the stream carries it (one stored failure, mapped once). After each
/// fault: the user's message is in the history, nothing is charged and nothing stays reserved, and with the fault gone
/// the next message is answered — no restart.
/// </summary>
[Trait("Category", "Faults")]
public sealed class DependencyFaultTests(PostgresServer postgres)
{
    private const string Question = "Are you there?";

    public static TheoryData<StoreProvider, string> LlmFaults => TestStore.OnEachProvider(LlmFault.All.Keys);

    public static TheoryData<StoreProvider, string> LettaFaults => TestStore.OnEachProvider(LettaFault.All.Keys);

    [Theory]
    [MemberData(nameof(LlmFaults))]
    public async Task AnLlmFaultIsAClearProblemKeepsTheMessageChargesNothingAndTheNextMessageSucceeds(StoreProvider provider, string name)
    {
        var fault = LlmFault.All[name];
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-faults-" + Guid.NewGuid().ToString("N")));
        await using var api = await OnAsync(provider, LlmApi(llm));
        using var client = api.CreateClient();
        var user = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, user.AccessToken); // the turn's own model call only

        llm.Enqueue(fault.Reply);
        var failed = await client.SendAsync(ChatTests.Json(SseReader.Send(user.AccessToken, Question)), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(failed, fault.Status, fault.Code);
        await AssertKeptAndChargedOnceAsync(client, user.AccessToken, fault.PartlyStreamed);
        await AssertRecoversAsync(client, user.AccessToken, () => llm.Enqueue(FakeReply.Text("Back again.", promptTokens: 12, completionTokens: 3)), "Back again.");
    }

    [Theory]
    [MemberData(nameof(LettaFaults))]
    public async Task ALettaFaultIsAClearProblemKeepsTheMessageChargesNothingAndTheNextMessageSucceeds(StoreProvider provider, string name)
    {
        var fault = LettaFault.All[name];
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var relay = TcpRelay.Start(letta.Url);
        await using var model = await ChatCompletionsResponder.StartAsync();
        await using var api = await OnAsync(provider, new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", relay.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", model.BaseUrl)
            .WithSetting("Letta:MaxConflictRetries", "1")
            // The fault alone, not the breaker it would open when Letta stays down (CircuitBreakerTests proves that).
            .WithSetting("Resilience:letta:MinimumThroughput", "1000"));
        using var client = api.CreateClient();
        var user = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, user.AccessToken);

        fault.Inject(letta, relay);
        var failed = await client.SendAsync(ChatTests.Json(SseReader.Send(user.AccessToken, Question)), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(failed, fault.Status, fault.Code);
        await AssertKeptAndChargedOnceAsync(client, user.AccessToken, partlyStreamed: false);
        // Letta's model calls go to the responder directly here, not through AiChat's metered /internal/llm: nothing to charge.
        await AssertRecoversAsync(client, user.AccessToken, () =>
        {
            relay.Up();
            model.Reply("Letta is back.", prompt: 20, completion: 4);
        }, "Letta is back.", metered: false);
    }

    /// <summary>
    /// The user's message is in the history and no answer completed; nothing stays reserved; what is spent is exactly
    /// the usage recorded on the failed answer — zero when the upstream produced nothing, the metered estimate of the
    /// part that streamed before a cut (the upstream did bill that), never twice.
    /// </summary>
    private static async Task AssertKeptAndChargedOnceAsync(HttpClient client, string token, bool partlyStreamed)
    {
        var history = await ChatTests.HistoryAsync(client, token, 10);
        var asked = Assert.Single(history, m => m.GetProperty("role").GetString() == "user");
        Assert.Equal(Question, asked.GetProperty("content").GetString());
        Assert.DoesNotContain(history, m => m.GetProperty("role").GetString() == "assistant" && m.GetProperty("status").GetString() == "complete");
        var usage = await UsageTotalsAsync(client, token);
        Assert.Equal(partlyStreamed ? 1 : 0, usage.GetProperty("calls").GetInt64());
        Assert.Equal(partlyStreamed, usage.GetProperty("cost_usd").GetDecimal() > 0m);
        var budget = await BudgetAsync(client, token);
        Assert.Equal(usage.GetProperty("cost_usd").GetDecimal(), budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
    }

    private static async Task<JsonElement> UsageTotalsAsync(HttpClient client, string token)
    {
        var response = await client.GetWithTokenAsync("/api/v1/user/usage", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("totals");
    }

    /// <summary>With the fault gone, the next message is answered; what is spent is what the answer's usage says it cost.</summary>
    private static async Task AssertRecoversAsync(HttpClient client, string token, Action heal, string answer, bool metered = true)
    {
        var spentBefore = (await BudgetAsync(client, token)).GetProperty("spent_usd").GetDecimal();
        heal();
        var response = await client.SendAsync(ChatTests.Json(SseReader.Send(token, "And now?")), TestContext.Current.CancellationToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"after the fault: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
        var result = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(answer, result.GetProperty("assistant_message").GetProperty("content").GetString());
        var before = await UsageTotalsAsync(client, token);
        var budget = await BudgetAsync(client, token);
        var cost = result.GetProperty("usage") is { ValueKind: JsonValueKind.Object } usage && usage.GetProperty("cost_usd") is { ValueKind: JsonValueKind.Number } priced
            ? priced.GetDecimal()
            : 0m;
        Assert.Equal(metered, cost > 0m);
        Assert.Equal(spentBefore + cost, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(before.GetProperty("cost_usd").GetDecimal(), budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
    }

    internal static async Task<JsonElement> BudgetAsync(HttpClient client, string token)
    {
        var response = await client.GetWithTokenAsync("/api/v1/user/budget", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
    }

    /// <summary>The API on the fake LLM endpoint, with a one-second attempt timeout so a silent upstream fails fast.</summary>
    internal static ApiFactory LlmApi(FakeOpenAi llm) => new ApiFactory()
        .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
        .WithSetting("Llm:ApiKey", llm.ApiKey)
        .WithSetting("Llm:Model", "gpt-4o-mini")
        .WithSetting("Llm:MaxOutputTokens", "200")
        .WithSetting("Resilience:llm:AttemptTimeout", "00:00:01");

    internal async Task<ApiFactory> OnAsync(StoreProvider provider, ApiFactory api) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;

    private sealed record LlmFault(FakeReply Reply, HttpStatusCode Status, string Code, bool PartlyStreamed = false)
    {
        public static readonly IReadOnlyDictionary<string, LlmFault> All = new Dictionary<string, LlmFault>
        {
            ["500"] = new(FakeReply.Error(500, "server_error", "The server had an error."), HttpStatusCode.BadGateway, "llm_error"),
            ["429"] = new(FakeReply.Error(429, "rate_limit_error", "Rate limit reached."), HttpStatusCode.TooManyRequests, "llm_rate_limited"),
            // No byte (not even headers) within the one-second attempt timeout.
            ["timeout"] = new(FakeReply.Delayed(FakeReply.Error(500, "server_error", "too late"), TimeSpan.FromSeconds(20)), HttpStatusCode.BadGateway, "llm_unreachable"),
            ["disconnect mid-stream"] = new(FakeReply.ErrorMidStream("Let me thi"), HttpStatusCode.BadGateway, "llm_protocol_error", PartlyStreamed: true),
            ["malformed chunk"] = new(FakeReply.Malformed("Let me thi"), HttpStatusCode.BadGateway, "llm_protocol_error", PartlyStreamed: true),
            ["LiteLLM budget_exceeded"] = new(FakeReply.BudgetExceeded(), HttpStatusCode.PaymentRequired, "budget_exceeded"),
        };
    }

    private sealed record LettaFault(Action<FakeLetta, TcpRelay> Inject, HttpStatusCode Status, string Code)
    {
        public static readonly IReadOnlyDictionary<string, LettaFault> All = new Dictionary<string, LettaFault>
        {
            ["down (connection refused)"] = new((_, relay) => relay.Down(), HttpStatusCode.BadGateway, "agent_unavailable"),
            // As many 409s as the client tries (once, and once again: Letta:MaxConflictRetries 1).
            ["409 busy"] = new((letta, _) => letta.ConflictNextSends(2), HttpStatusCode.BadGateway, "agent_unavailable"),
            ["500"] = new((letta, _) => letta.FailNextRequests(1), HttpStatusCode.BadGateway, "agent_unavailable"),
        };
    }
}
