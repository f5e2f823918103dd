using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Agents;

/// <summary>
/// The API with <c>Agents:Runtime=Letta</c> against the Letta contract fake: the same endpoints and behaviour as the
/// built-in runtime, and every turn driven through <c>POST /api/v1/chat/message</c> and read as the client reads it
/// (its stream, or its JSON problem), on both stores.
/// </summary>
[Trait("Category", "Agents")]
public sealed class LettaThroughApiTests(PostgresServer postgres) : IAsyncLifetime
{
    private FakeLetta _letta = null!;
    private ChatCompletionsResponder _llm = null!;
    private ApiFactory? _api;
    private HttpClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ApiFactory Api => _api!;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_api is not null)
        {
            await _api.DisposeAsync();
            await _letta.DisposeAsync();
            await _llm.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnStreamsLettasReasoningTextAndUsageInOrderWithTheUsersKey(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync(name: "Ana");
        _llm.Reply("Hello Ana, good to see you again!", prompt: 120, completion: 9);

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi, it's me");

        Assert.Equal(["turn.started", "reasoning.delta"], events.Take(2).Select(e => e.Event));
        Assert.Equal(["turn.started", "usage", "turn.completed"], events.Steps());
        Assert.Contains(events.SkipWhile(e => e.Event != "reasoning.delta").TakeWhile(e => e.Event != "usage"), e => e.Event == "message.delta");
        Assert.Equal("Hello Ana, good to see you again!", events.Streamed());
        Assert.Equal("Hello Ana, good to see you again!", events.Answer());
        var usage = events.Named("usage").Single();
        Assert.Equal((120, 9, "gpt-4o-mini"), (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("model").GetString()));

        var call = Assert.Single(_letta.LlmCalls);
        Assert.Equal(pair.UserId, Api.Services.GetRequiredService<IInternalLlmKeys>().UserFor(call.ApiKey!));
        var seen = Assert.Single(_llm.Calls);
        Assert.Contains("Name: Ana", seen.Body["messages"]![0]!["content"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("Hi, it's me", seen.Body["messages"]!.AsArray()[^1]!["content"]!.GetValue<string>());
        var history = await (await _client.GetWithTokenAsync("/api/v1/chat/history", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(["Hello Ana, good to see you again!", "Hi, it's me"], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LettasMemoryToolCallIsStreamedAppliedAndMetered(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync(name: null);
        _llm.ReplyWithToolCall("core_memory_append", """{"label":"human","content":"Likes tea"}""", prompt: 100, completion: 12);
        _llm.Reply("Noted: you like tea.", prompt: 130, completion: 6);

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "I like tea");

        Assert.Equal(["turn.started", "tool.call", "tool.result", "memory.updated", "usage", "turn.completed"], events.Steps());
        var call = events.Named("tool.call").Single();
        Assert.Equal(("core_memory_append", "Likes tea"), (call.GetProperty("name").GetString(), call.GetProperty("arguments").GetProperty("content").GetString()));
        Assert.True(events.Named("tool.result").Single().GetProperty("ok").GetBoolean());
        Assert.Equal("human", events.Named("memory.updated").Single().GetProperty("label").GetString());
        var usage = events.Named("usage").Single();
        Assert.Equal((230, 18), (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32()));
        Assert.Equal("Noted: you like tea.", events.Answer());
        Assert.Equal("Likes tea", _letta.Agents.Single().Blocks.Single(b => b.Label == "human").Value);
        Assert.Equal(2, _llm.Calls.Count);
        Assert.All(_letta.LlmCalls, c => Assert.Equal(pair.UserId, Api.Services.GetRequiredService<IInternalLlmKeys>().UserFor(c.ApiKey!)));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnErrorInLettasStreamFailsTheTurnAfterWhatArrivedAndKeepsTheUsersMessage(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _letta.FailNextSend();

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi");

        Assert.Equal("Partial answer", events.Streamed());
        var failed = events.Failure();
        Assert.Equal(("agent_error", 502), (failed.GetProperty("code").GetString(), failed.GetProperty("status").GetInt32()));
        var history = await (await _client.GetWithTokenAsync("/api/v1/chat/history", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal([("assistant", "failed"), ("user", "complete")], history.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString(), m.GetProperty("status").GetString())));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARefusedLlmCallInsideLettaIsAProblemOfTheJsonAnswer(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _llm.FailWith(HttpStatusCode.PaymentRequired);

        var response = await _client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Hi")), Ct);

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.BadGateway, "agent_error")).RootElement;
        Assert.Contains("402", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(402, Assert.Single(_letta.LlmCalls).Status);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ASendLettaRefusesAsBusyIsRetriedAndTheTurnCompletes(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _letta.ConflictNextSends(2);

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi");

        Assert.Equal(ChatCompletionsResponder.DefaultText, events.Answer());
        Assert.Equal(3, _letta.Requests.Count(r => r.Method == "POST" && r.Path.EndsWith("/messages", StringComparison.Ordinal)));
        Assert.Single(_llm.Calls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ASendStillBusyAfterTheLastRetryFailsTheTurnAsUnavailable(StoreProvider provider)
    {
        await StartAsync(provider, api => api.WithSetting("Letta:MaxConflictRetries", "2"));
        var pair = await _client.RegisterAsync();
        _letta.ConflictNextSends(5);

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi");

        Assert.Equal(["turn.started", "turn.failed"], events.Steps());
        Assert.Equal("agent_unavailable", events.Failure().GetProperty("code").GetString());
        Assert.Equal(3, _letta.Requests.Count(r => r.Method == "POST" && r.Path.EndsWith("/messages", StringComparison.Ordinal)));
        Assert.Empty(_llm.Calls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ASendThatMeetsAServerErrorIsNeverTriedAgain(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _letta.FailNextRequests(1);

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi");

        Assert.Equal("agent_unavailable", events.Failure().GetProperty("code").GetString());
        Assert.Single(_letta.Requests, r => r.Method == "POST" && r.Path.EndsWith("/messages", StringComparison.Ordinal));
        Assert.Empty(_llm.Calls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhenLettaIsDownATurnFailsAsUnavailableAndTheUsersMessageIsKept(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        await _letta.DisposeAsync();

        var events = await AgentTurns.StreamAsync(_client, pair.AccessToken, "Hi");

        Assert.Equal(["turn.started", "turn.failed"], events.Steps());
        Assert.Equal("agent_unavailable", events.Failure().GetProperty("code").GetString());
        var history = await (await _client.GetWithTokenAsync("/api/v1/chat/history", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("Hi", history.GetProperty("messages").EnumerateArray().Single(m => m.GetProperty("role").GetString() == "user").GetProperty("content").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ACancelledTurnOfTheDefaultConversationEndsCancelledAndCancelsNothingInLetta(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _llm.Hold();

        var (response, reader) = await AgentTurns.OpenAsync(_client, pair.AccessToken, "Hi");
        using (response)
        {
            var started = (await reader.NextAsync(Ct))!;
            await ChatTests.WaitForAsync(() => Task.FromResult(_llm.Waiting == 1 ? (object)true : null));
            var cancel = await _client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{started.Data.GetProperty("turn_id").GetGuid()}/cancel", pair.AccessToken);
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);

            var rest = await reader.ReadAllAsync();
            Assert.Equal("cancelled", rest.Failure().GetProperty("code").GetString());
        }

        _llm.Release();
        var history = await (await _client.GetWithTokenAsync("/api/v1/chat/history", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal([("assistant", "cancelled"), ("user", "complete")], history.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString(), m.GetProperty("status").GetString())));
        Assert.DoesNotContain(_letta.Requests, r => r.Path.EndsWith("/cancel", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegisteringCreatesALettaAgentMeteredAsItsUser(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync(name: "Ana");

        var agent = Assert.Single(_letta.Agents);
        Assert.Contains($"aichat-user:{pair.UserId}", agent.Tags);
        Assert.Equal("Name: Ana", agent.Blocks.Single(b => b.Label == "human").Value);
        var lettaProvider = Assert.Single(_letta.Providers);
        var keys = Api.Services.GetRequiredService<IInternalLlmKeys>();
        Assert.Equal(pair.UserId, keys.UserFor(lettaProvider.ApiKey));
        Assert.Equal(_llm.BaseUrl, lettaProvider.BaseUrl);

        var status = await (await _client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("letta", status.GetProperty("runtime").GetString());
        Assert.Equal("healthy", (await (await _client.GetWithTokenAsync("/api/v1/user/health", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("status").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MemoryEndpointsBehaveAsOnTheBuiltInRuntime(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync(name: "Ana");

        var over = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken,
            new { blocks = new[] { new { label = "persona", value = "changed" }, new { label = "human", value = new string('z', 5001) } } });
        await ApiPipelineTests.AssertProblemAsync(over, HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded");
        Assert.NotEqual("changed", _letta.Agents.Single().Blocks.Single(b => b.Label == "persona").Value);

        var ok = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLikes tea" } } });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("Name: Ana\nLikes tea", _letta.Agents.Single().Blocks.Single(b => b.Label == "human").Value);

        var inserted = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", pair.AccessToken, new { content = "Ana plays the cello." });
        Assert.Equal(HttpStatusCode.Created, inserted.StatusCode);
        var id = (await inserted.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetString();
        var found = await (await _client.GetWithTokenAsync("/api/v1/agent/memory/archival?query=cello", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(id, found.GetProperty("passages")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/agent/memory/archival/{id}", pair.AccessToken)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", pair.AccessToken, new { scope = "memory" })).StatusCode);
        Assert.Equal("Name: Ana", _letta.Agents.Single().Blocks.Single(b => b.Label == "human").Value);
    }


    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingTheAccountDeletesTheLettaAgent(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Empty(_letta.Agents);
        Assert.Empty(_letta.Providers);
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM agents"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhenLettaIsDownRegistrationLeavesNothingBehind(StoreProvider provider)
    {
        await StartAsync(provider);
        _letta.FailNextRequests(20);

        var response = await _client.PostAsJsonAsync("/api/v1/auth/register", new { email = Accounts.NewEmail(), password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "provisioning_failed");
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM users"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM agents"));
    }

    private async Task StartAsync(StoreProvider provider, Func<ApiFactory, ApiFactory>? configure = null)
    {
        _letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        _llm = await ChatCompletionsResponder.StartAsync();
        var api = new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", _letta.Url.ToString())
            .WithSetting("Letta:Password", _letta.Password)
            .WithSetting("Letta:LlmBaseUrl", _llm.BaseUrl)
            .WithSetting("Letta:RetryDelay", "00:00:00.005");
        _api = await (configure?.Invoke(api) ?? api).OnAsync(provider, postgres);
        _client = _api.CreateClient();
    }
}
