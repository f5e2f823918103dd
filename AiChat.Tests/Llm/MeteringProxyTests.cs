using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Agents;
using AiChat.Tests.Auth;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Llm;

/// <summary>The metered OpenAI-compatible endpoint that Letta calls: per-user keys, metering, OpenAI's wire format.</summary>
[Trait("Category", "Billing")]
public sealed class MeteringProxyTests(PostgresServer postgres)
{
    [Fact]
    public async Task ACallWithAUsersKeyIsAnsweredInOpenAisFormatAndChargedToThatUser()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.Enqueue(FakeReply.Text("Hi from upstream", promptTokens: 5, completionTokens: 50));
        await using var api = Priced(new ApiFactory(), llm);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));

        var response = await PostAsync(client, key, new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "hello" } }, max_tokens = 200 });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.Equal("Hi from upstream", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(5, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal((5 * 0.15m + 50 * 0.60m) / 1_000_000m, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(200, Assert.Single(llm.Requests).MaxTokens);
    }

    [Fact]
    public async Task AStreamedCallWithToolsComesBackAsChunksWithUsage()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.Enqueue(FakeReply.ToolCall("send_message", """{"message":"hello"}"""));
        await using var api = Priced(new ApiFactory(), llm);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));

        var response = await PostAsync(client, key, new
        {
            model = "gpt-4o-mini",
            stream = true,
            stream_options = new { include_usage = true },
            messages = new object[] { new { role = "system", content = "be brief" }, new { role = "user", content = "hi" } },
            tools = new[] { new { type = "function", function = new { name = "send_message", description = "Send a message", parameters = new { type = "object", properties = new { message = new { type = "string" } } } } } },
        });

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", lines[^1]);
        var chunks = lines.SkipLast(1).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var call = chunks.First(c => c.GetProperty("choices").GetArrayLength() > 0 && c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("tool_calls", out _));
        Assert.Equal("send_message", call.GetProperty("choices")[0].GetProperty("delta").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("tool_calls", chunks.Last(c => c.GetProperty("choices").GetArrayLength() > 0).GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.True(chunks[^1].GetProperty("usage").GetProperty("cost").GetDecimal() > 0);
        Assert.Equal(["send_message"], Assert.Single(llm.Requests).ToolNames);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("sk-not-ours")]
    [InlineData("internal-secret")]
    public async Task ACallWithoutAUsersKeyIsRefused(string? key)
    {
        await using var api = new ApiFactory().WithSetting("InternalLlm:Secret", "internal-secret");
        using var client = api.CreateClient();

        var response = await PostAsync(client, key, new { model = "x", messages = new[] { new { role = "user", content = "hello" } } });

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_api_key", (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task ACallOverTheBudgetIsRefusedAsLiteLlmWould()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        await using var api = Priced(new ApiFactory(), llm).WithSetting("Billing:DefaultBudgetUsd", "0.00001");
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));

        var response = await PostAsync(client, key, new { model = "gpt-4o-mini", stream = true, messages = new[] { new { role = "user", content = "hello" } } });

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal("budget_exceeded", (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("error").GetProperty("type").GetString());
        Assert.Empty(llm.Requests);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task TwoHundredConcurrentCallsForOneUserNeverSpendPastTheBudget(int instances)
    {
        // Each call costs exactly its worst case (6 prompt tokens counted, 200 output tokens: 0.0001209 USD); the budget fits 8 of them.
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Delayed(FakeReply.Text("ok", promptTokens: 6, completionTokens: 200), TimeSpan.FromMilliseconds(50));
        var secret = LogSink.Secret("shared-internal-secret-" + Guid.NewGuid().ToString("N"));
        var database = await postgres.CreateDatabaseAsync();
        var apis = Enumerable.Range(0, instances)
            .Select(_ => Priced(new ApiFactory(), llm).WithPostgres(database).WithSetting("Billing:DefaultBudgetUsd", "0.001").WithSetting("Llm:MaxOutputTokens", "200").WithSetting("InternalLlm:Secret", secret))
            .ToList();
        try
        {
            var clients = apis.Select(api => api.CreateClient()).ToList();
            var pair = await clients[0].RegisterAsync();
            var key = LogSink.Secret(apis[0].Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));
            var worstCase = apis[0].Services.GetRequiredService<AiChat.Api.Billing.PriceTable>().CostNanos("gpt-4o-mini", 6, 200);

            var start = new TaskCompletionSource();
            var calls = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
            {
                await start.Task;
                return (await PostAsync(clients[i % clients.Count], key, new { model = "gpt-4o-mini", max_tokens = 200, messages = new[] { new { role = "user", content = "hi" } } })).StatusCode;
            })).ToList();
            start.SetResult();
            var statuses = await Task.WhenAll(calls);

            var admitted = statuses.Count(s => s == HttpStatusCode.OK);
            Assert.Equal(200, admitted + statuses.Count(s => s == HttpStatusCode.PaymentRequired));
            Assert.Equal(120_900, worstCase);
            Assert.Equal(8, admitted); // 8 × 120 900 nano-USD fit in 1 000 000; a ninth does not, whichever instance asks
            var budget = await (await clients[0].GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            Assert.Equal(8 * 120_900 / 1_000_000_000m, budget.GetProperty("spent_usd").GetDecimal());
            Assert.Equal(admitted, llm.Requests.Count);
        }
        finally
        {
            foreach (var api in apis)
            {
                await api.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AProviderCountingMoreThanWasReservedIsChargedOnlyTheReservationAndItIsLogged()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.Enqueue(FakeReply.Text("surprisingly long prompt", promptTokens: 100_000, completionTokens: 10));
        await using var api = Priced(new ApiFactory(), llm);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));
        var reservation = api.Services.GetRequiredService<AiChat.Api.Billing.PriceTable>().CostNanos("gpt-4o-mini", 6, 200);

        Assert.Equal(HttpStatusCode.OK, (await PostAsync(client, key, new { model = "gpt-4o-mini", max_tokens = 200, messages = new[] { new { role = "user", content = "hi" } } })).StatusCode);

        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(reservation / 1_000_000_000m, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Contains(LogSink.AllLines, line => line.Contains("more than its reservation", StringComparison.Ordinal) && line.Contains($"ChargedNanos={reservation}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task EmbeddingsAreServedMeteredAndComeBackAsFloatsOrBase64()
    {
        await using var api = new ApiFactory();
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));
        string[] texts = ["Ana plays the cello every Sunday", "On Sundays Ana plays cello", "The invoice is due next month"];

        var floats = await (await PostAsync(client, key, new { model = "text-embedding-3-small", input = texts }, "/internal/llm/v1/embeddings")).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var base64 = await (await PostAsync(client, key, new { model = "text-embedding-3-small", input = texts[0], encoding_format = "base64" }, "/internal/llm/v1/embeddings")).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);

        var vectors = floats.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal(3, vectors.Count);
        Assert.All(vectors, v => Assert.Equal(1536, v.Length));
        Assert.True(Cosine(vectors[0], vectors[1]) > Cosine(vectors[0], vectors[2]) + 0.2, "texts about the same thing are closer");
        var decoded = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(base64.GetProperty("data")[0].GetProperty("embedding").GetString()!)).ToArray();
        Assert.Equal(vectors[0], decoded);
        Assert.True(floats.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 10);
        Assert.Equal(2, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM ledger_entries WHERE state = 'settled'"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(client, null, new { input = "x" }, "/internal/llm/v1/embeddings")).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LettasOwnLlmCallsAreMeteredAsTheirUser(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Text("Hello from Letta's model", promptTokens: 500, completionTokens: 20);
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        var port = Loopback.FreePort();
        await using var api = Priced(new ApiFactory(), llm)
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", letta.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", $"http://127.0.0.1:{port}/internal/llm/v1");
        await api.OnAsync(provider, postgres);
        api.UseKestrel(port);
        api.StartServer();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var pair = await client.RegisterAsync();
        // Titled at creation: no title call follows the turn, so the budget shows the turn's call alone.
        var conversationId = await Chat.Conversations.CreateIdAsync(client, pair.AccessToken, title: "Letta");

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "hi", conversationId);

        Assert.Equal("Hello from Letta's model", events.Answer());
        var call = Assert.Single(letta.LlmCalls);
        Assert.Equal(200, call.Status);
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal((500 * 0.15m + 20 * 0.60m) / 1_000_000m, budget.GetProperty("spent_usd").GetDecimal());
    }

    [Fact]
    public async Task EveryCatalogueModelIsOfferedAndACallNamingOneIsServedAndChargedAsIt()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Text("ok", promptTokens: 5, completionTokens: 50);
        await using var api = TwoModels(Priced(new ApiFactory(), llm));
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));

        var listed = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/internal/llm/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } }, TestContext.Current.CancellationToken);
        var named = await PostAsync(client, key, new { model = "house-model", messages = new[] { new { role = "user", content = "hello" } } });
        var other = await PostAsync(client, key, new { model = "not-in-the-catalogue", messages = new[] { new { role = "user", content = "hello" } } });

        var ids = (await listed.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString());
        Assert.Equal(["gpt-4o-mini", "house-model", "text-embedding-3-small"], ids);
        Assert.Equal(HttpStatusCode.OK, named.StatusCode);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal([("house-model", 2000), ("gpt-4o-mini", 300)], llm.Requests.Select(r => (r.Model, r.MaxTokens)));
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal((5 * 1.25m + 50 * 5m + 5 * 0.15m + 50 * 0.60m) / 1_000_000m, budget.GetProperty("spent_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ALettaConversationOnACatalogueModelIsAnsweredAndChargedAsThatModel(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-proxy-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Text("Hello from the house model", promptTokens: 1000, completionTokens: 100);
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        var port = Loopback.FreePort();
        await using var api = TwoModels(Priced(new ApiFactory(), llm))
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", letta.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", $"http://127.0.0.1:{port}/internal/llm/v1");
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        api.UseKestrel(port);
        api.StartServer();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var pair = await client.RegisterAsync();
        // Titled at creation: no title call follows the turn, so the upstream sees the turn's call alone.
        var created = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/conversations", pair.AccessToken, new { title = "House", model = "house-model" });
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetGuid();

        var answer = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/conversations/{id}/messages", pair.AccessToken, new { content = "hi" });

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var result = await answer.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("Hello from the house model", result.GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal("house-model", Assert.Single(llm.Requests).Model);
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal((1000 * 1.25m + 100 * 5m) / 1_000_000m, budget.GetProperty("spent_usd").GetDecimal());
    }

    // The default model at the shipped price, and a second one with its own.
    private static ApiFactory TwoModels(ApiFactory api) => api
        .WithSetting("Llm:Models:0:Id", "gpt-4o-mini")
        .WithSetting("Llm:Models:0:ContextWindow", "128000")
        .WithSetting("Llm:Models:0:MaxOutputTokens", "300")
        .WithSetting("Llm:Models:0:Default", "true")
        .WithSetting("Llm:Models:1:Id", "house-model")
        .WithSetting("Llm:Models:1:ContextWindow", "32000")
        .WithSetting("Llm:Models:1:MaxOutputTokens", "2000")
        .WithSetting("Llm:Models:1:InputPerMillionUsd", "1.25")
        .WithSetting("Llm:Models:1:OutputPerMillionUsd", "5");

    private static ApiFactory Priced(ApiFactory api, FakeOpenAi llm) => api
        .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
        .WithSetting("Llm:ApiKey", llm.ApiKey)
        .WithSetting("Llm:Model", "gpt-4o-mini")
        .WithSetting("Llm:MaxOutputTokens", "300");

    private static double Cosine(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, string? key, object body, string path = "/internal/llm/v1/chat/completions")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client.SendAsync(request, TestContext.Current.CancellationToken);
    }
}
