using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Agents;

/// <summary>The agent endpoints of DESIGN §3 on the built-in runtime.</summary>
[Trait("Category", "Agents")]
public sealed class AgentApiTests(PostgresServer postgres) : IAsyncLifetime
{
    private ApiFactory? _api;
    private HttpClient _client = null!;
    private TokenPair _ana = null!;

    private ApiFactory Api => _api!;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task EveryNewAccountHasAReadyAgentWithDefaultBlocks(StoreProvider provider)
    {
        await StartAsync(provider);
        var status = await GetAsync("/api/v1/agent/status");
        Assert.Equal("builtin", status.GetProperty("runtime").GetString());
        Assert.Equal("ready", status.GetProperty("status").GetString());
        Assert.Equal("aichat-offline", status.GetProperty("model").GetString());
        Assert.Equal(2, status.GetProperty("memory").GetProperty("blocks").GetInt32());
        Assert.Equal(0, status.GetProperty("memory").GetProperty("archival_passages").GetInt32());
        Assert.True(status.GetProperty("context").GetProperty("tokens").GetInt32() > 0);

        var me = await GetAsync("/api/v1/auth/me");
        Assert.Equal(status.GetProperty("agent_id").GetGuid(), me.GetProperty("agent").GetProperty("id").GetGuid());

        var memory = await GetAsync("/api/v1/agent/memory");
        var human = memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == "human");
        Assert.Equal("Name: Ana", human.GetProperty("value").GetString());
        Assert.Equal(5000, human.GetProperty("limit").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ArchivalPassagesCanBeAddedSearchedAndDeleted(StoreProvider provider)
    {
        await StartAsync(provider);
        var cello = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = "Ana plays the cello on Sundays." });
        Assert.Equal(HttpStatusCode.Created, cello.StatusCode);
        var celloId = (await cello.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetString();
        await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = "Her cat is called Miso." });

        var all = await GetAsync("/api/v1/agent/memory/archival");
        Assert.Equal(2, all.GetProperty("count").GetInt32());
        Assert.Equal("Her cat is called Miso.", all.GetProperty("passages")[0].GetProperty("content").GetString());

        var found = await GetAsync("/api/v1/agent/memory/archival?query=playing%20music");
        Assert.Equal(celloId, Assert.Single(found.GetProperty("passages").EnumerateArray()).GetProperty("id").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/agent/memory/archival/{celloId}", _ana.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/agent/memory/archival/{celloId}", _ana.AccessToken)).StatusCode);
        Assert.Equal(1, (await GetAsync("/api/v1/agent/memory/archival")).GetProperty("count").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OneUsersMemoryIsInvisibleToAnother(StoreProvider provider)
    {
        await StartAsync(provider);
        var secret = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = "Ana's bank PIN hint: her first cat." });
        var id = (await secret.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetString();
        var bob = await _client.RegisterAsync(name: "Bob");

        var bobsSearch = await (await _client.GetWithTokenAsync("/api/v1/agent/memory/archival?query=cat", bob.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(0, bobsSearch.GetProperty("count").GetInt32());
        Assert.Empty(bobsSearch.GetProperty("passages").EnumerateArray());
        Assert.Equal(HttpStatusCode.NotFound, (await _client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/agent/memory/archival/{id}", bob.AccessToken)).StatusCode);
        Assert.Equal(1, (await GetAsync("/api/v1/agent/memory/archival")).GetProperty("count").GetInt32());
        var bobsMemory = await (await _client.GetWithTokenAsync("/api/v1/agent/memory", bob.AccessToken)).Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain("Ana", bobsMemory);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ResetScopesForgetWhatTheySay(StoreProvider provider)
    {
        await StartAsync(provider);
        await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = "Ana likes jazz." });
        await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", _ana.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLikes jazz" } } });
        await BuiltInAgentTests.InsertHistoryAsync(Api, _ana.UserId, 6);

        Assert.Equal(HttpStatusCode.OK, (await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", _ana.AccessToken, new { scope = "conversation" })).StatusCode);
        Assert.Equal(0, (await GetAsync("/api/v1/agent/status")).GetProperty("message_count").GetInt32());
        Assert.Equal(1, (await GetAsync("/api/v1/agent/memory/archival")).GetProperty("count").GetInt32());

        Assert.Equal(HttpStatusCode.OK, (await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", _ana.AccessToken, new { scope = "memory" })).StatusCode);
        Assert.Equal(0, (await GetAsync("/api/v1/agent/memory/archival")).GetProperty("count").GetInt32());
        Assert.Equal("Name: Ana", await BuiltInAgentTests.HumanBlockAsync(Api, _ana.UserId));

        foreach (var bad in new object[] { new { scope = "everything" }, new { scope = (string?)null }, new { scope = "1" } })
        {
            await ApiPipelineTests.AssertProblemAsync(await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", _ana.AccessToken, bad), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ABadMemoryRequestIsAProblem(StoreProvider provider)
    {
        await StartAsync(provider);
        await ApiPipelineTests.AssertProblemAsync(await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", _ana.AccessToken, new { blocks = Array.Empty<object>() }), HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = " " }), HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(await _client.GetWithTokenAsync("/api/v1/agent/memory/archival?limit=1000", _ana.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheAgentIsInTheExportAndGoesWithTheAccount(StoreProvider provider)
    {
        await StartAsync(provider);
        await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", _ana.AccessToken, new { content = "Ana's favourite colour is teal." });

        var export = await GetAsync("/api/v1/user/export");
        Assert.Equal("builtin", export.GetProperty("agent").GetProperty("runtime").GetString());
        Assert.Contains("teal", export.GetProperty("agent").GetProperty("archival_passages").GetRawText());
        Assert.Equal("healthy", (await GetAsync("/api/v1/user/health")).GetProperty("status").GetString());

        await _client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", _ana.AccessToken);
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM agents"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM archival_passages"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM memory_blocks"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AResetWhileATurnRunsIsTurnedAwayAsBusy(StoreProvider provider)
    {
        var model = new GatedChatClient("done");
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var (response, turn) = await AgentTurns.OpenAsync(client, pair.AccessToken, "slow one");
        using (response)
        {
            await model.WaitUntilHeldAsync(1);

            Assert.Equal("busy", (await (await client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("status").GetString());
            var reset = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", pair.AccessToken, new { scope = "all" });

            await ApiPipelineTests.AssertProblemAsync(reset, HttpStatusCode.Conflict, "agent_busy");
            model.Open();
            Assert.Equal("done", (await turn.ReadAllAsync()).Answer());
        }

        Assert.Equal(2, (await (await client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("message_count").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMessageWhileAResetHoldsTheConversationIsTurnedAwayAsBusyAndNothingOfItIsStored(StoreProvider provider)
    {
        await StartAsync(provider);
        var ana = (await GetAsync("/api/v1/user/profile")).GetProperty("id").GetGuid();
        // A reset in progress (on this instance or another one on the same database) holds the default conversation.
        var store = Api.Services.GetRequiredService<AgentStore>();
        var now = DateTimeOffset.UtcNow;
        var holder = Guid.NewGuid();
        Assert.NotNull(await store.TryHoldDefaultAsync(ana, holder, now, now.AddMinutes(1), TestContext.Current.CancellationToken));

        Assert.Equal("busy", (await GetAsync("/api/v1/agent/status")).GetProperty("status").GetString());
        var refused = await _client.SendAsync(ChatTests.Json(SseReader.Send(_ana.AccessToken, "during the reset")), TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.Conflict, "agent_busy");
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM messages"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM turns"));

        await store.ReleaseHoldAsync((await store.GetConversationAsync(ana, null, TestContext.Current.CancellationToken))!.Id, holder);
        Assert.Equal("ready", (await GetAsync("/api/v1/agent/status")).GetProperty("status").GetString());
        var answered = await _client.SendAsync(ChatTests.Json(SseReader.Send(_ana.AccessToken, "after the reset")), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Equal(2, await BuiltInAuthTests.CountAsync(Api, "SELECT COUNT(*) FROM messages"));
    }

    private async Task StartAsync(StoreProvider provider)
    {
        _api = await new ApiFactory().OnAsync(provider, postgres);
        _client = _api.CreateClient();
        _ana = await _client.RegisterAsync(name: "Ana");
    }

    private async Task<JsonElement> GetAsync(string path)
    {
        var response = await _client.GetWithTokenAsync(path, _ana.AccessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
    }
}
