using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace AiChat.Tests.Agents;

/// <summary>Atomic block writes and the memory change log ("what I know about you"), on SQLite and Postgres.</summary>
[Trait("Category", "Agents")]
public sealed class MemoryChangeTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task FiftyConcurrentAppendsFromTwoInstancesAllLandOnceEach(StoreProvider provider)
    {
        var (api, connectionString) = await ApiOnAsync(provider);
        await using var _ = api;
        var pair = await api.CreateClient().RegisterAsync(name: "Ana");
        var agent = await AgentOfAsync(api, pair.UserId);
        await using var second = SecondInstance(api, provider, connectionString);
        var stores = new[] { api.Services.GetRequiredService<MemoryStore>(), new MemoryStore(second.Db) };

        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(
            () => stores[i % 2].AppendAsync(agent.Id, "human", $"fact {i:D2}", MemoryChangeSource.Tool(Guid.NewGuid()), DateTimeOffset.UtcNow, Ct), Ct)));

        var value = await HumanBlockAsync(api, agent.Id);
        var lines = value.Split('\n');
        Assert.Equal("Name: Ana", lines[0]);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"fact {i:D2}"), lines.Skip(1).Order(StringComparer.Ordinal));
        var changes = await api.Services.GetRequiredService<MemoryStore>().ListChangesAsync(agent.Id, null, null, 200, Ct);
        AssertOneChainOfTools(changes, "Name: Ana", value, 50);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ConcurrentAppendsStopExactlyAtTheLimitAndARefusedOneChangesNothing(StoreProvider provider)
    {
        // "Name: Ana" is 9 characters and each append adds 8 ("\nfact NN"): exactly 30 of the 50 fit in 249.
        var (api, connectionString) = await ApiOnAsync(provider, humanLimit: 249);
        await using var _ = api;
        var pair = await api.CreateClient().RegisterAsync(name: "Ana");
        var agent = await AgentOfAsync(api, pair.UserId);
        await using var second = SecondInstance(api, provider, connectionString);
        var stores = new[] { api.Services.GetRequiredService<MemoryStore>(), new MemoryStore(second.Db) };

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            try
            {
                await stores[i % 2].AppendAsync(agent.Id, "human", $"fact {i:D2}", MemoryChangeSource.Tool(Guid.NewGuid()), DateTimeOffset.UtcNow, Ct);
                return true;
            }
            catch (MemoryLimitExceededException refused)
            {
                Assert.Equal(257, refused.Requested);
                return false;
            }
        }, Ct)));

        Assert.Equal(30, outcomes.Count(ok => ok));
        var value = await HumanBlockAsync(api, agent.Id);
        Assert.Equal(249, value.Length);
        Assert.Equal(31, value.Split('\n').Length);
        var changes = await api.Services.GetRequiredService<MemoryStore>().ListChangesAsync(agent.Id, null, null, 200, Ct);
        AssertOneChainOfTools(changes, "Name: Ana", value, 30);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnThatLearnsTheUsersNameRecordsAToolChangeWithItsTurn(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);

        var response = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Hi! My name is Ana.")), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var turnId = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("turn_id").GetGuid();

        var change = Assert.Single((await ChangesAsync(client, pair.AccessToken)).GetProperty("changes").EnumerateArray());
        Assert.Equal("human", change.GetProperty("label").GetString());
        Assert.Equal("", change.GetProperty("old_value").GetString());
        Assert.Equal(await HumanBlockAsync(api, (await AgentOfAsync(api, pair.UserId)).Id), change.GetProperty("new_value").GetString());
        Assert.Contains("Ana", change.GetProperty("new_value").GetString());
        var source = change.GetProperty("source");
        Assert.Equal("tool", source.GetProperty("kind").GetString());
        Assert.Equal(turnId, source.GetProperty("turn_id").GetGuid());
        Assert.Equal(await DefaultConversationAsync(client, pair.AccessToken), source.GetProperty("conversation_id").GetGuid());
        Assert.Equal(JsonValueKind.Null, source.GetProperty("key_id").ValueKind);
        Assert.True(change.GetProperty("created_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnArchivalPassageSavedByATurnSaysWhichTurnSavedIt(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", pair.AccessToken, new { content = "Saved by hand." });

        var response = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Please remember that my sister's birthday is on the 3rd of May.")), Ct);
        var turnId = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("turn_id").GetGuid();

        // The passage says which turn of which conversation saved it; one saved through the API says neither.
        var listed = await (await client.GetWithTokenAsync("/api/v1/agent/memory/archival", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        var passages = listed.GetProperty("passages").EnumerateArray().ToList();
        Assert.Equal(2, passages.Count);
        var saved = passages.Single(p => p.GetProperty("content").GetString()!.Contains("3rd of May"));
        Assert.Equal(turnId, saved.GetProperty("turn_id").GetGuid());
        Assert.Equal(await DefaultConversationAsync(client, pair.AccessToken), saved.GetProperty("conversation_id").GetGuid());
        var byHand = passages.Single(p => p.GetProperty("content").GetString() == "Saved by hand.");
        Assert.Equal(JsonValueKind.Null, byHand.GetProperty("turn_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, byHand.GetProperty("conversation_id").ValueKind);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnApiUpdateIsRecordedAsTheUsersChangeOfEachBlockItChanged(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        var persona = await BlockValueAsync(client, pair.AccessToken, "persona");

        Assert.Equal(HttpStatusCode.OK, (await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLives in Porto"), ("persona", persona))).StatusCode);
        await ApiPipelineTests.AssertProblemAsync(
            await UpdateAsync(client, pair.AccessToken, ("persona", "Brief."), ("human", new string('y', 5001))), HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded");

        var change = Assert.Single((await ChangesAsync(client, pair.AccessToken)).GetProperty("changes").EnumerateArray());
        Assert.Equal("human", change.GetProperty("label").GetString());
        Assert.Equal("Name: Ana", change.GetProperty("old_value").GetString());
        Assert.Equal("Name: Ana\nLives in Porto", change.GetProperty("new_value").GetString());
        Assert.Equal("user", change.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, change.GetProperty("source").GetProperty("turn_id").ValueKind);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMemoryResetIsRecordedAsTheUsersChangeBackToTheDefaults(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLikes tea"));

        Assert.Equal(HttpStatusCode.OK, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", pair.AccessToken, new { scope = "memory" })).StatusCode);

        var changes = (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes").EnumerateArray().ToList();
        Assert.Equal(2, changes.Count);
        Assert.Equal(("human", "Name: Ana\nLikes tea", "Name: Ana", "user"), Describe(changes[0]));
        Assert.Equal(("human", "Name: Ana", "Name: Ana\nLikes tea", "user"), Describe(changes[1]));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheChangeLogPagesNewestFirstAndFiltersByLabel(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        for (var i = 1; i <= 5; i++)
        {
            await UpdateAsync(client, pair.AccessToken, ("human", $"Name: Ana\nfact {i}"));
        }

        await UpdateAsync(client, pair.AccessToken, ("persona", "Brief."));

        var seen = new List<string>();
        string? cursor = null;
        var pages = new List<int>();
        do
        {
            var page = await ChangesAsync(client, pair.AccessToken, $"?label=human&limit=2{(cursor is null ? "" : $"&before={cursor}")}");
            var changes = page.GetProperty("changes").EnumerateArray().ToList();
            pages.Add(changes.Count);
            seen.AddRange(changes.Select(c => c.GetProperty("new_value").GetString()!));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal([2, 2, 1], pages);
        Assert.Equal(Enumerable.Range(1, 5).Reverse().Select(i => $"Name: Ana\nfact {i}"), seen);
        var all = (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes").EnumerateArray().ToList();
        Assert.Equal(6, all.Count);
        Assert.Equal("persona", all[0].GetProperty("label").GetString());
        Assert.Equal(JsonValueKind.Null, (await ChangesAsync(client, pair.AccessToken)).GetProperty("next_cursor").ValueKind);
        Assert.Empty((await ChangesAsync(client, pair.AccessToken, "?label=diary")).GetProperty("changes").EnumerateArray());

        foreach (var bad in new[] { "?limit=0", "?limit=201", "?before=not-a-cursor", "?label=%20" })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync($"/api/v1/agent/memory/changes{bad}", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARevertRestoresTheValueBeforeThatChangeAndIsItselfRecorded(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLives in Porto"));
        await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLives in Lisbon"));
        var first = (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes")[1];

        var reverted = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/agent/memory/changes/{first.GetProperty("id").GetGuid()}/revert", pair.AccessToken);

        Assert.Equal(HttpStatusCode.OK, reverted.StatusCode);
        var blocks = (await reverted.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("blocks").EnumerateArray();
        Assert.Equal("Name: Ana", blocks.Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString());
        Assert.Equal("Name: Ana", await BlockValueAsync(client, pair.AccessToken, "human"));
        var revert = (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes")[0];
        Assert.Equal(("human", "Name: Ana\nLives in Lisbon", "Name: Ana", "revert"), Describe(revert));
        Assert.Equal(first.GetProperty("id").GetGuid(), revert.GetProperty("source").GetProperty("reverts_change_id").GetGuid());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARevertThatWouldPassTheBlocksLimitIsRefusedAndChangesNothing(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        await UpdateAsync(client, pair.AccessToken, ("human", new string('y', 100)));
        await UpdateAsync(client, pair.AccessToken, ("human", "short"));
        var latest = (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes")[0].GetProperty("id").GetGuid();
        // The limit was lowered after the change (as a new default would be on a memory reset).
        await using (var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct))
        {
            await connection.ExecuteAsync("UPDATE memory_blocks SET char_limit = 50 WHERE label = 'human'");
        }

        var refused = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/agent/memory/changes/{latest}/revert", pair.AccessToken);

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded")).RootElement;
        Assert.Equal(50, problem.GetProperty("limit").GetInt32());
        Assert.Equal(100, problem.GetProperty("requested").GetInt32());
        Assert.Equal("short", await BlockValueAsync(client, pair.AccessToken, "human"));
        Assert.Equal(2, (await ChangesAsync(client, pair.AccessToken)).GetProperty("changes").GetArrayLength());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnotherUsersChangeIsNotFoundAndNotListed(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync(name: "Ana");
        var bob = await client.RegisterAsync(name: "Bob");
        await UpdateAsync(client, ana.AccessToken, ("human", "Name: Ana\nSecret"));
        var anasChange = (await ChangesAsync(client, ana.AccessToken)).GetProperty("changes")[0].GetProperty("id").GetGuid();

        foreach (var id in new[] { anasChange.ToString(), Guid.NewGuid().ToString(), "not-an-id" })
        {
            await ApiPipelineTests.AssertProblemAsync(
                await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/agent/memory/changes/{id}/revert", bob.AccessToken), HttpStatusCode.NotFound, "not_found");
        }

        Assert.Empty((await ChangesAsync(client, bob.AccessToken)).GetProperty("changes").EnumerateArray());
        Assert.Equal("Name: Ana\nSecret", await BlockValueAsync(client, ana.AccessToken, "human"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheExportHasTheChangeLogAndDeletingTheAccountRemovesIt(StoreProvider provider)
    {
        var (api, _) = await ApiOnAsync(provider);
        await using var __ = api;
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        var agent = await AgentOfAsync(api, pair.UserId);
        await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLikes tea"));
        await UpdateAsync(client, pair.AccessToken, ("human", "Name: Ana\nLikes coffee"));

        var export = await GetAsync(client, pair.AccessToken, "/api/v1/user/export");

        var exported = export.GetProperty("agent").GetProperty("memory_changes").EnumerateArray().ToList();
        Assert.Equal(["Name: Ana\nLikes coffee", "Name: Ana\nLikes tea"], exported.Select(c => c.GetProperty("new_value").GetString()));
        Assert.All(exported, c => Assert.Equal("user", c.GetProperty("source").GetProperty("kind").GetString()));

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM memory_changes WHERE agent_id = @id", new { id = agent.Id }));
    }

    /// <summary>Atomic writes leave one chain: each change starts from the value the one before it left, none is lost.</summary>
    private static void AssertOneChainOfTools(IReadOnlyList<MemoryChange> newestFirst, string start, string end, int count)
    {
        Assert.Equal(count, newestFirst.Count);
        Assert.All(newestFirst, c => Assert.Equal(("human", MemoryChangeKinds.Tool), (c.Label, c.Source.Kind)));
        var oldestFirst = newestFirst.Reverse().ToList();
        Assert.Equal(start, oldestFirst[0].OldValue);
        for (var i = 1; i < count; i++)
        {
            Assert.Equal(oldestFirst[i - 1].NewValue, oldestFirst[i].OldValue);
        }

        Assert.Equal(end, oldestFirst[^1].NewValue);
    }

    private static (string?, string?, string?, string?) Describe(JsonElement change) => (
        change.GetProperty("label").GetString(), change.GetProperty("old_value").GetString(), change.GetProperty("new_value").GetString(),
        change.GetProperty("source").GetProperty("kind").GetString());

    private async Task<(ApiFactory Api, string? ConnectionString)> ApiOnAsync(StoreProvider provider, int? humanLimit = null)
    {
        var api = new ApiFactory();
        if (humanLimit is not null)
        {
            api.WithSetting("Agents:HumanLimit", humanLimit.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (provider != StoreProvider.Postgres)
        {
            return (api, null);
        }

        var connectionString = await postgres.CreateDatabaseAsync();
        api.WithPostgres(connectionString);
        return (api, connectionString);
    }

    /// <summary>A store as another API instance would have it: its own connections (and pool) to the same database.</summary>
    private static SecondStore SecondInstance(ApiFactory api, StoreProvider provider, string? connectionString)
    {
        if (provider == StoreProvider.Postgres)
        {
            var dataSource = NpgsqlDataSource.Create(connectionString!);
            return new SecondStore(AiChatDb.ForPostgres(dataSource, connectionString!), dataSource);
        }

        return new SecondStore(AiChatDb.ForSqlite(api.Services.GetRequiredService<AiChatDb>().SqliteFilePath!), null);
    }

    private static Task<AgentRecord> AgentOfAsync(ApiFactory api, Guid userId) => api.Services.GetRequiredService<AgentService>().GetAsync(userId, Ct);

    private static async Task<string> HumanBlockAsync(ApiFactory api, Guid agentId) =>
        (await api.Services.GetRequiredService<MemoryStore>().GetBlocksAsync(agentId, Ct)).Single(b => b.Label == "human").Value;

    private static async Task<string?> BlockValueAsync(HttpClient client, string token, string label) =>
        (await GetAsync(client, token, "/api/v1/agent/memory")).GetProperty("blocks").EnumerateArray()
            .Single(b => b.GetProperty("label").GetString() == label).GetProperty("value").GetString();

    private static Task<HttpResponseMessage> UpdateAsync(HttpClient client, string token, params (string Label, string? Value)[] blocks) =>
        client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", token, new { blocks = blocks.Select(b => new { label = b.Label, value = b.Value }) });

    private static Task<JsonElement> ChangesAsync(HttpClient client, string token, string query = "") =>
        GetAsync(client, token, $"/api/v1/agent/memory/changes{query}");

    private static async Task<JsonElement> GetAsync(HttpClient client, string token, string path)
    {
        var response = await client.GetWithTokenAsync(path, token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private sealed class SecondStore(AiChatDb db, NpgsqlDataSource? dataSource) : IAsyncDisposable
    {
        public AiChatDb Db { get; } = db;

        public ValueTask DisposeAsync() => dataSource?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    /// <summary>The user's default conversation, as the conversation list shows it.</summary>
    internal static async Task<Guid> DefaultConversationAsync(HttpClient client, string accessToken)
    {
        var list = await (await client.GetWithTokenAsync("/api/v1/conversations", accessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return list.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("is_default").GetBoolean()).GetProperty("id").GetGuid();
    }
}
