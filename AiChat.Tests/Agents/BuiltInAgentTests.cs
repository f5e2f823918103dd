using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Agents;

/// <summary>The built-in runtime through the real API: provisioning, the offline model's memory, tools, bounds and serialisation.</summary>
[Trait("Category", "Agents")]
public sealed class BuiltInAgentTests(PostgresServer postgres)
{
    [Fact]
    public async Task TheOfflineModelRemembersANameAcrossARestart()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-offline-{Guid.NewGuid():N}");
        TokenPair pair;
        await using (var first = new ApiFactory(dataDirectory) { DeleteDataOnDispose = false })
        {
            using var client = first.CreateClient();
            pair = await client.RegisterAsync(name: null);

            var events = await first.RunTurnAsync(pair.UserId, "Hi! My name is Ana.");

            Assert.Contains(events, e => e is AgentEvent.ToolCall { Name: MemoryTools.Append });
            Assert.Contains(events, e => e is AgentEvent.ToolResult { Ok: true });
            Assert.Contains(events, e => e is AgentEvent.MemoryUpdated { Label: "human" });
            Assert.StartsWith(OfflineChatClient.Label, events.Answer());
            Assert.Equal(2, events.OfType<AgentEvent.Usage>().Count());
            var memory = await (await client.GetWithTokenAsync("/api/v1/agent/memory", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            Assert.Contains("Ana", memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString());
        }

        await using var second = new ApiFactory(dataDirectory);
        var answer = (await second.RunTurnAsync(pair.UserId, "What is my name?")).Answer();

        Assert.Contains("Ana", answer);
        Assert.Contains("offline model", answer);
    }

    [Fact]
    public async Task TheOfflineModelSavesAndFindsArchivalMemory()
    {
        await using var api = new ApiFactory();
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        await api.RunTurnAsync(pair.UserId, "Please remember that my sister's birthday is on the 3rd of May.");
        var events = await api.RunTurnAsync(pair.UserId, "What do you remember about birthdays?");

        Assert.Contains(events, e => e is AgentEvent.ToolCall { Name: MemoryTools.ArchivalSearch });
        Assert.Contains("3rd of May", events.Answer());
        var archival = await (await client.GetWithTokenAsync("/api/v1/agent/memory/archival?query=birthday", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(1, archival.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task AToolThatWouldOverflowABlockFailsAndLeavesTheBlockAsItWas()
    {
        var longFact = new string('x', 300);
        var model = new ScriptedChatClient((call, _, _) => call == 1
            ? ScriptedStep.Use(MemoryTools.Append, new() { ["label"] = "human", ["content"] = longFact })
            : ScriptedStep.Say("ok"));
        await using var api = new ApiFactory().WithSetting("Agents:HumanLimit", "200").WithServices(s => s.UseModel(model));
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var events = await api.RunTurnAsync(pair.UserId, "remember this long thing");

        Assert.Contains(events, e => e is AgentEvent.ToolResult { Name: MemoryTools.Append, Ok: false });
        Assert.DoesNotContain(events, e => e is AgentEvent.MemoryUpdated);
        var toolResult = model.Received[1].Messages.Last().Contents.OfType<FunctionResultContent>().Single().Result?.ToString();
        Assert.StartsWith("Error", toolResult);
        Assert.Equal("Name: Ana", await HumanBlockAsync(api, pair.UserId));
    }

    [Fact]
    public async Task AMemoryUpdateOverALimitIsRefusedAndNothingIsApplied()
    {
        await using var api = new ApiFactory();
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new
        {
            blocks = new[] { new { label = "persona", value = "A new persona." }, new { label = "human", value = new string('y', 5001) } },
        });

        var problem = await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded");
        Assert.Equal("human", JsonDocument.Parse(problem).RootElement.GetProperty("label").GetString());
        var memory = await (await client.GetWithTokenAsync("/api/v1/agent/memory", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.DoesNotContain(memory.GetProperty("blocks").EnumerateArray(), b => b.GetProperty("value").GetString() == "A new persona.");

        var ok = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLives in Porto" } } });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("Name: Ana\nLives in Porto", await HumanBlockAsync(api, pair.UserId));

        var unknown = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "secrets", value = "x" } } });
        await ApiPipelineTests.AssertProblemAsync(unknown, HttpStatusCode.UnprocessableEntity, "unknown_block");
    }

    [Fact]
    public async Task TheToolLoopStopsAtItsBoundAndStillAnswers()
    {
        var model = new ScriptedChatClient((call, _, options) => options?.Tools is { Count: > 0 }
            ? ScriptedStep.Use(MemoryTools.ArchivalSearch, new() { ["query"] = $"loop {call}" })
            : ScriptedStep.Say("final answer"));
        await using var api = new ApiFactory().WithSetting("Agents:MaxSteps", "4").WithServices(s => s.UseModel(model));
        var pair = await api.CreateClient().RegisterAsync();

        var events = await api.RunTurnAsync(pair.UserId, "loop forever");

        Assert.Equal(4, model.Calls);
        Assert.Equal(3, events.OfType<AgentEvent.ToolCall>().Count());
        Assert.Null(model.Received[^1].Options?.Tools);
        var completed = events.OfType<AgentEvent.Completed>().Single();
        Assert.Equal("max_steps", completed.StopReason);
        Assert.Equal("final answer", completed.Text);
    }

    [Fact]
    public async Task TwoTurnsOnOneAgentRunOneAfterTheOther()
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("done")) { Delay = TimeSpan.FromMilliseconds(300) };
        await using var api = new ApiFactory().WithServices(s => s.UseModel(model));
        var pair = await api.CreateClient().RegisterAsync();

        var turns = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => api.RunTurnAsync(pair.UserId, $"message {i}")));

        Assert.All(turns, events => Assert.Equal("done", events.Answer()));
        Assert.Equal(1, model.MaxConcurrentCalls);
    }

    [Fact]
    public async Task TwoApiInstancesOnOneDatabaseStillRunOneTurnAtATime()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("done")) { Delay = TimeSpan.FromMilliseconds(300) };
        await using var first = new ApiFactory().WithPostgres(connectionString).WithServices(s => s.UseModel(model));
        await using var second = new ApiFactory().WithPostgres(connectionString).WithServices(s => s.UseModel(model));
        var pair = await first.CreateClient().RegisterAsync();

        var turns = await Task.WhenAll(
            first.RunTurnAsync(pair.UserId, "one"),
            second.RunTurnAsync(pair.UserId, "two"),
            first.RunTurnAsync(pair.UserId, "three"),
            second.RunTurnAsync(pair.UserId, "four"));

        Assert.All(turns, events => Assert.Equal("done", events.Answer()));
        Assert.Equal(4, model.Calls);
        Assert.Equal(1, model.MaxConcurrentCalls);
    }

    [Fact]
    public async Task ASecondTurnThatCannotWaitIsTurnedAwayAsBusy()
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("done")) { Delay = TimeSpan.FromSeconds(1) };
        await using var api = new ApiFactory().WithServices(s => s.UseModel(model));
        var pair = await api.CreateClient().RegisterAsync();

        var running = api.RunTurnAsync(pair.UserId, "slow");
        await Task.Delay(200, TestContext.Current.CancellationToken);

        await Assert.ThrowsAsync<AgentBusyException>(() => api.RunTurnAsync(pair.UserId, "impatient", TimeSpan.FromMilliseconds(100)));
        Assert.Equal("done", (await running).Answer());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OlderTurnsAreSummarisedWhenTheWindowFills(StoreProvider provider)
    {
        await using var api = new ApiFactory().WithSetting("Llm:ContextWindow", "2000").WithSetting("Llm:MaxOutputTokens", "200");
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        var pair = await api.CreateClient().RegisterAsync();
        await InsertHistoryAsync(api, pair.UserId, 400);

        var events = await api.RunTurnAsync(pair.UserId, "What is my name?");

        Assert.Equal(2, events.OfType<AgentEvent.Usage>().Count()); // the summary, then the answer
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        var summary = await connection.QuerySingleAsync<(string Summary, long Through)>(
            "SELECT summary, summary_through_seq FROM conversations WHERE user_id = @id AND is_default", new { id = pair.UserId });
        Assert.Contains("summary of", summary.Summary);
        Assert.True(summary.Through > 0);

        var status = await (await api.CreateClient().GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(status.GetProperty("context").GetProperty("tokens").GetInt32() <= 2000);
        Assert.Equal(400, status.GetProperty("message_count").GetInt32());
    }

    [Fact]
    public async Task AHundredThousandMessageHistoryStaysWithinTheWindow()
    {
        await using var api = new ApiFactory().WithSetting("Llm:ContextWindow", "8000");
        var pair = await api.CreateClient().RegisterAsync(name: null);
        await InsertHistoryAsync(api, pair.UserId, 100_000);

        var events = await api.RunTurnAsync(pair.UserId, "What is my name?");

        Assert.Contains("don't know your name", events.Answer());
        var status = await (await api.CreateClient().GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(status.GetProperty("context").GetProperty("tokens").GetInt32() <= 8000);
    }

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
