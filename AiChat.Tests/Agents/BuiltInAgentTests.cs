using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Agents;

/// <summary>The built-in runtime through the real API: provisioning, the offline model's memory, tools, bounds and serialisation.</summary>
[Trait("Category", "Agents")]
public sealed class BuiltInAgentTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheOfflineModelRemembersANameAcrossARestart(StoreProvider provider)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-offline-{Guid.NewGuid():N}");
        var database = provider == StoreProvider.Postgres ? await postgres.CreateDatabaseAsync() : null;
        TokenPair pair;
        await using (var first = OnStore(new ApiFactory(dataDirectory) { DeleteDataOnDispose = false }, database))
        {
            using var client = first.CreateClient();
            pair = await client.RegisterAsync(name: null);

            var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "Hi! My name is Ana.");

            Assert.Equal(["turn.started", "usage", "tool.call", "tool.result", "memory.updated", "usage", "turn.completed"], events.Steps());
            Assert.Equal(MemoryTools.Append, events.Named("tool.call").Single().GetProperty("name").GetString());
            Assert.True(events.Named("tool.result").Single().GetProperty("ok").GetBoolean());
            Assert.Equal("human", events.Named("memory.updated").Single().GetProperty("label").GetString());
            Assert.StartsWith(OfflineChatClient.Label, events.Answer());
            var memory = await (await client.GetWithTokenAsync("/api/v1/agent/memory", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Contains("Ana", memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString());
        }

        await using var second = OnStore(new ApiFactory(dataDirectory), database);
        var answer = (await AgentTurns.StreamAsync(second.CreateClient(), pair.AccessToken, "What is my name?")).Answer();

        Assert.Contains("Ana", answer);
        Assert.Contains("offline model", answer);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheOfflineModelSavesAndFindsArchivalMemory(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        await AgentTurns.StreamAsync(client, pair.AccessToken, "Please remember that my sister's birthday is on the 3rd of May.");
        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "What do you remember about birthdays?");

        Assert.Equal([MemoryTools.ArchivalSearch], events.Named("tool.call").Select(c => c.GetProperty("name").GetString()));
        Assert.Contains("3rd of May", events.Answer());
        var archival = await (await client.GetWithTokenAsync("/api/v1/agent/memory/archival?query=birthday", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(1, archival.GetProperty("count").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AToolThatWouldOverflowABlockFailsAndLeavesTheBlockAsItWas(StoreProvider provider)
    {
        var longFact = new string('x', 300);
        var model = new ScriptedChatClient((call, _, _) => call == 1
            ? ScriptedStep.Use(MemoryTools.Append, new() { ["label"] = "human", ["content"] = longFact })
            : ScriptedStep.Say("ok"));
        await using var api = await new ApiFactory().WithSetting("Agents:HumanLimit", "200").WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "remember this long thing");

        var result = events.Named("tool.result").Single();
        Assert.Equal((MemoryTools.Append, false), (result.GetProperty("name").GetString(), result.GetProperty("ok").GetBoolean()));
        Assert.Empty(events.Named("memory.updated"));
        Assert.Equal("ok", events.Answer());
        var toolResult = model.Received[1].Messages.Last().Contents.OfType<FunctionResultContent>().Single().Result?.ToString();
        Assert.StartsWith("Error", toolResult);
        Assert.Equal("Name: Ana", await HumanBlockAsync(api, pair.UserId));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMemoryUpdateOverALimitIsRefusedAndNothingIsApplied(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new
        {
            blocks = new[] { new { label = "persona", value = "A new persona." }, new { label = "human", value = new string('y', 5001) } },
        });

        var problem = await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded");
        Assert.Equal("human", JsonDocument.Parse(problem).RootElement.GetProperty("label").GetString());
        var memory = await (await client.GetWithTokenAsync("/api/v1/agent/memory", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.DoesNotContain(memory.GetProperty("blocks").EnumerateArray(), b => b.GetProperty("value").GetString() == "A new persona.");

        var ok = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLives in Porto" } } });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("Name: Ana\nLives in Porto", await HumanBlockAsync(api, pair.UserId));

        var unknown = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "secrets", value = "x" } } });
        await ApiPipelineTests.AssertProblemAsync(unknown, HttpStatusCode.UnprocessableEntity, "unknown_block");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheToolLoopStopsAtItsBoundAndStillAnswers(StoreProvider provider)
    {
        var model = new ScriptedChatClient((call, _, options) => options?.Tools is { Count: > 0 }
            ? ScriptedStep.Use(MemoryTools.ArchivalSearch, new() { ["query"] = $"loop {call}" })
            : ScriptedStep.Say("final answer"));
        await using var api = await new ApiFactory().WithSetting("Agents:MaxSteps", "4").WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "loop forever");

        Assert.Equal(4, model.Calls);
        Assert.Equal(3, events.Named("tool.call").Count());
        Assert.Null(model.Received[^1].Options?.Tools);
        Assert.Equal("final answer", events.Answer());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMessageWhileTheAgentAnswersIsTurnedAwayAsBusyAndNothingOfItIsStored(StoreProvider provider)
    {
        var model = new GatedChatClient("done");
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var (response, running) = await AgentTurns.OpenAsync(client, pair.AccessToken, "slow");
        using (response)
        {
            await model.WaitUntilHeldAsync(1);

            foreach (var content in new[] { "impatient", "still impatient" })
            {
                var refused = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, content)), Ct);
                await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.Conflict, "agent_busy");
            }

            model.Open();
            Assert.Equal("done", (await running.ReadAllAsync()).Answer());
        }

        Assert.Equal(1, model.MaxHeld);
        var history = await (await client.GetWithTokenAsync("/api/v1/chat/history", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(["done", "slow"], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    // Several API instances share one store only on Postgres (the AppHost refuses replicas on SQLite).
    [Fact]
    public async Task TwoApiInstancesOnOneDatabaseStillRunOneTurnAtATime()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        var model = new GatedChatClient("done");
        // One data folder too: the instances share the token signing key, as replicas get it from the AppHost.
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-two-{Guid.NewGuid():N}");
        await using var second = new ApiFactory(dataDirectory).WithPostgres(connectionString).WithServices(s => s.UseModel(model));
        await using var first = new ApiFactory(dataDirectory) { DeleteDataOnDispose = false }.WithPostgres(connectionString).WithServices(s => s.UseModel(model));
        using var firstClient = first.CreateClient();
        using var secondClient = second.CreateClient();
        var pair = await firstClient.RegisterAsync();

        var (response, running) = await AgentTurns.OpenAsync(firstClient, pair.AccessToken, "one");
        using (response)
        {
            await model.WaitUntilHeldAsync(1);

            foreach (var client in new[] { secondClient, firstClient, secondClient })
            {
                var refused = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "two")), Ct);
                await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.Conflict, "agent_busy");
            }

            model.Open();
            Assert.Equal("done", (await running.ReadAllAsync()).Answer());
        }

        Assert.Equal("done", (await AgentTurns.StreamAsync(secondClient, pair.AccessToken, "three")).Answer());
        Assert.Equal(1, model.MaxHeld);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OlderTurnsAreSummarisedWhenTheWindowFills(StoreProvider provider)
    {
        await using var api = await new ApiFactory().WithSetting("Llm:ContextWindow", "2000").WithSetting("Llm:MaxOutputTokens", "200").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await InsertHistoryAsync(api, pair.UserId, 400);

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "What is my name?");

        Assert.Equal(2, events.Named("usage").Count()); // the summary, then the answer
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        var summary = await connection.QuerySingleAsync<(string Summary, long Through)>(
            "SELECT summary, summary_through_seq FROM conversations WHERE user_id = @id AND is_default", new { id = pair.UserId });
        Assert.Contains("summary of", summary.Summary);
        Assert.True(summary.Through > 0);

        var status = await (await client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(status.GetProperty("context").GetProperty("tokens").GetInt32() <= 2000);
        Assert.Equal(402, status.GetProperty("message_count").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AHundredThousandMessageHistoryStaysWithinTheWindow(StoreProvider provider)
    {
        await using var api = await new ApiFactory().WithSetting("Llm:ContextWindow", "8000").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        await InsertHistoryAsync(api, pair.UserId, 100_000);

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "What is my name?");

        Assert.Contains("don't know your name", events.Answer());
        var status = await (await client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(status.GetProperty("context").GetProperty("tokens").GetInt32() <= 8000);
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ApiFactory OnStore(ApiFactory api, string? database) => database is null ? api : api.WithPostgres(database);

    internal static async Task<string> HumanBlockAsync(ApiFactory api, Guid userId)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        return await connection.QuerySingleAsync<string>(
            "SELECT b.value FROM memory_blocks b JOIN agents a ON a.id = b.agent_id WHERE a.user_id = @userId AND b.label = 'human'", new { userId });
    }

    internal static async Task InsertHistoryAsync(ApiFactory api, Guid userId, int count)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        var start = DateTimeOffset.UtcNow.AddDays(-30);
        var rows = Enumerable.Range(1, count).Select(i => new
        {
            Id = Guid.NewGuid(),
            UserId = userId,
            Role = i % 2 == 1 ? "user" : "assistant",
            Content = $"Message {i} about plans, books and the weather in Porto.",
            CreatedAt = start.AddSeconds(i),
        });
        await connection.ExecuteAsync(
            "INSERT INTO messages (id, user_id, conversation_id, role, content, status, created_at) VALUES (@Id, @UserId, (SELECT id FROM conversations WHERE user_id = @UserId AND is_default), @Role, @Content, 'complete', @CreatedAt)",
            rows, transaction);
        // The count the store keeps with every write (the agent's status reads it).
        await connection.ExecuteAsync(
            "UPDATE conversations SET message_count = message_count + @count WHERE user_id = @userId AND is_default", new { userId, count }, transaction);
        await transaction.CommitAsync(TestContext.Current.CancellationToken);
    }
}
