using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Agents;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using static AiChat.Tests.Chat.ConversationRequests;

namespace AiChat.Tests.Chat;

/// <summary>
/// Generated conversation titles over HTTP, on SQLite and Postgres: one metered LLM call after the first completed
/// exchange, never over a user's title. One worker: a turn's title step ends before the next turn starts, so a later
/// turn's answer shows that an earlier title step is over.
/// </summary>
[Trait("Category", "Chat")]
public sealed class TitleTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AfterTheFirstExchangeOneMeteredCallNamesTheConversation(StoreProvider provider)
    {
        await using var api = await ApiAsync(provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken);
        var named = await CreateAsync(client, pair.AccessToken, "Named");

        var turn = await AnswerAsync(client, Send(pair.AccessToken, conversation, "plan a trip to Lisbon in May, please!"));

        Assert.Equal("Plan a trip to Lisbon in", await TitleAsync(client, pair.AccessToken, conversation));
        var listed = await (await client.GetWithTokenAsync("/api/v1/conversations", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("Plan a trip to Lisbon in", listed.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("id").GetGuid() == conversation).GetProperty("title").GetString());

        // The title call is the turn's second metered call, charged to the user beside the turn's own.
        var turnId = turn.GetProperty("turn_id").GetGuid();
        Assert.Equal(2, await SettledCallsAsync(api, turnId));
        var usage = await (await client.GetWithTokenAsync("/api/v1/user/usage", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(2, usage.GetProperty("totals").GetProperty("calls").GetInt64());
        var turnCost = turn.GetProperty("usage").GetProperty("cost_usd").GetDecimal();
        var spent = (await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("spent_usd").GetDecimal();
        Assert.Equal(usage.GetProperty("totals").GetProperty("cost_usd").GetDecimal(), spent);
        Assert.True(spent > turnCost && turnCost > 0, $"spent {spent}, the turn itself {turnCost}");

        // Later exchanges keep the title and make no title call.
        var second = await AnswerAsync(client, Send(pair.AccessToken, conversation, "and what about Porto?"));
        await AnswerAsync(client, Send(pair.AccessToken, named, "a turn after the last one's title step"));
        Assert.Equal(1, await SettledCallsAsync(api, second.GetProperty("turn_id").GetGuid()));
        Assert.Equal("Plan a trip to Lisbon in", (await GetAsync(client, pair.AccessToken, conversation)).GetProperty("title").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheSingleChatsDefaultConversationIsNamedToo(StoreProvider provider)
    {
        await using var api = await ApiAsync(provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);

        var turn = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Hello, my name is Ana")), Ct);

        Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        Assert.Equal("Hello my name is Ana", await TitleAsync(client, pair.AccessToken, await DefaultAsync(client, pair.AccessToken)));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AUsersTitleIsNeverReplacedWhetherGivenAtTheStartOrDuringTheFirstExchange(StoreProvider provider)
    {
        using var gate = new ManualResetEventSlim();
        var model = new ScriptedChatClient((_, messages, _) =>
        {
            if (messages[^1].Text == "wait for it")
            {
                gate.Wait(TimeSpan.FromSeconds(30));
            }

            return ScriptedStep.Say("an answer");
        });
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var given = await CreateAsync(client, pair.AccessToken, "  Trip notes ");
        await AnswerAsync(client, Send(pair.AccessToken, given, "hello"));
        var renamed = await CreateAsync(client, pair.AccessToken);
        var (response, reader) = await SseReader.OpenAsync(client, Send(pair.AccessToken, renamed, "wait for it"));
        using var stream = response;
        Assert.Equal("turn.started", (await reader.NextAsync(Ct))!.Event);

        var patched = await client.SendWithTokenAsync(HttpMethod.Patch, $"/api/v1/conversations/{renamed}", pair.AccessToken, new { title = "Mine" });
        gate.Set();
        Assert.Equal("turn.completed", (await reader.ReadAllAsync())[^1].Event);
        await AnswerAsync(client, Send(pair.AccessToken, given, "a turn after the last one's title step"));

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("Trip notes", (await GetAsync(client, pair.AccessToken, given)).GetProperty("title").GetString());
        Assert.Equal("Mine", (await GetAsync(client, pair.AccessToken, renamed)).GetProperty("title").GetString());
        Assert.Equal(0, model.TitleCalls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATitleCallThatFailsLeavesTheConversationUnnamedAndIsLoggedAsAWarning(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("an answer")) { TitleFails = true };
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken);

        var turn = await AnswerAsync(client, Send(pair.AccessToken, conversation, "hello"));

        var turnId = turn.GetProperty("turn_id").GetGuid();
        await ChatTests.WaitForAsync(() => Task.FromResult(LogSink.AllLines.FirstOrDefault(line =>
            line.StartsWith("Warning AiChat.Api.Chat.TurnRunner:", StringComparison.Ordinal) && line.Contains($"got no title after turn {turnId}", StringComparison.Ordinal))));
        Assert.Equal(JsonValueKind.Null, (await GetAsync(client, pair.AccessToken, conversation)).GetProperty("title").ValueKind);
        Assert.Equal(1, model.TitleCalls);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(Send(pair.AccessToken, conversation, "still answering")), Ct)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ALettaConversationIsNamedThroughAiChatsOwnMeteredPipeline(StoreProvider provider)
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var llm = await ChatCompletionsResponder.StartAsync();
        await using var api = (await ApiAsync(provider))
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", letta.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", llm.BaseUrl);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        llm.Reply("Bom dia!", prompt: 20, completion: 3);

        var turn = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Good morning from Porto")), Ct);

        Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        var turnId = (await turn.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("turn_id").GetGuid();
        Assert.Equal("Good morning from Porto", await TitleAsync(client, pair.AccessToken, await DefaultAsync(client, pair.AccessToken)));
        Assert.Single(letta.LlmCalls); // the turn's; the title call did not go through Letta
        Assert.Equal(1, await SettledCallsAsync(api, turnId));
    }

    private static async Task<long> SettledCallsAsync(ApiFactory api, Guid turnId)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ledger_entries WHERE turn_id = @turnId AND state = 'settled'", new { turnId });
    }

    private async Task<ApiFactory> ApiAsync(StoreProvider provider, IChatClient? model = null)
    {
        var api = new ApiFactory()
            .WithSetting("Chat:Workers", "1")
            .WithSetting("Billing:Prices:aichat-offline:InputPerMillionUsd", "1000")
            .WithSetting("Billing:Prices:aichat-offline:OutputPerMillionUsd", "2000");
        if (model is not null)
        {
            api.WithServices(services => services.UseModel(model));
        }

        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        return api;
    }
}
