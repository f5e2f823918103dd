using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Chat;

/// <summary>
/// Turns at once, on SQLite and Postgres: one user's conversations answer in parallel up to
/// <c>Chat:MaxConcurrentTurnsPerUser</c>, one turn at a time in each, and parallel turns writing one memory block lose
/// nothing and never pass its limit.
/// </summary>
[Trait("Category", "Chat")]
public sealed class ConversationConcurrencyTests(PostgresServer postgres)
{
    private const int ParallelTurns = 50;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TurnsInTwoConversationsOfOneUserRunAtTheSameTimeAndBothComplete(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var first = await Conversations.CreateIdAsync(client, pair.AccessToken, "first");
        var second = await Conversations.CreateIdAsync(client, pair.AccessToken, "second");

        var answers = new[] { Conversations.SendAsync(client, pair.AccessToken, first, "one"), Conversations.SendAsync(client, pair.AccessToken, second, "two") };
        await model.WaitUntilHeldAsync(2);

        // Both turns are at the model at once, neither has answered: they overlap.
        Assert.Equal(2, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns WHERE status = 'running'"));
        Assert.Equal("busy", (await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/status")).GetProperty("status").GetString());
        Assert.All(answers, answer => Assert.False(answer.IsCompleted));
        model.Open();
        foreach (var answer in await Task.WhenAll(answers))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            var body = await answer.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.Equal(("complete", model.Answer), (body.GetProperty("assistant_message").GetProperty("status").GetString(), body.GetProperty("assistant_message").GetProperty("content").GetString()));
        }

        Assert.Equal(2, model.MaxHeld);
        Assert.Equal([model.Answer, "one"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, first)));
        Assert.Equal([model.Answer, "two"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, second)));
        Assert.Equal("ready", (await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/status")).GetProperty("status").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AThirdConcurrentTurnIsRefusedWithTooManyTurnsAndNothingIsStored(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await Conversations.CreateIdAsync(client, pair.AccessToken, $"conversation {i}"));
        }

        var running = new[] { Conversations.SendAsync(client, pair.AccessToken, ids[0], "one"), Conversations.SendAsync(client, pair.AccessToken, ids[1], "two") };
        await model.WaitUntilHeldAsync(2);

        var refused = await Conversations.SendAsync(client, pair.AccessToken, ids[2], "three");
        var (streamRefused, _) = await SseReader.OpenAsync(client, Conversations.Send(pair.AccessToken, ids[2], "three"));
        var singleChatRefused = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "three")), Ct);

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "too_many_turns")).RootElement;
        Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
        Assert.Equal((2, 5), (problem.GetProperty("max_concurrent_turns").GetInt32(), problem.GetProperty("retry_after_seconds").GetInt32()));
        await ApiPipelineTests.AssertProblemAsync(streamRefused, HttpStatusCode.TooManyRequests, "too_many_turns");
        await ApiPipelineTests.AssertProblemAsync(singleChatRefused, HttpStatusCode.TooManyRequests, "too_many_turns");
        Assert.Equal(TimeSpan.FromSeconds(5), singleChatRefused.Headers.RetryAfter?.Delta);
        var third = await Conversations.GetAsync(client, pair.AccessToken, ids[2]);
        Assert.Equal((0, JsonValueKind.Null), (third.GetProperty("message_count").GetInt32(), third.GetProperty("last_message_at").ValueKind));
        Assert.Equal((4, 2), (await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages"), await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns")));
        Assert.Equal(2, model.Calls);

        model.Open();
        Assert.All(await Task.WhenAll(running), answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        await Conversations.AnswerAsync(client, pair.AccessToken, ids[2], "three");
        Assert.Equal([model.Answer, "three"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, ids[2])));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ASecondMessageToABusyConversationIsConversationBusyAndOnTheSingleChatAgentBusy(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var defaultId = Assert.Single(await Conversations.ListIdsAsync(client, pair.AccessToken));
        var busy = await Conversations.CreateIdAsync(client, pair.AccessToken, "busy");

        var first = Conversations.SendAsync(client, pair.AccessToken, busy, "first");
        await model.WaitUntilHeldAsync(1);
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, busy, "second"), HttpStatusCode.Conflict, "conversation_busy");

        // With the default conversation answering too the user is at the limit of two: a busy conversation is still busy.
        var single = client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "single")), Ct);
        await model.WaitUntilHeldAsync(2);
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "again")), Ct), HttpStatusCode.Conflict, "agent_busy");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, defaultId, "again"), HttpStatusCode.Conflict, "conversation_busy");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, busy, "third"), HttpStatusCode.Conflict, "conversation_busy");

        Assert.Equal((4, 2), (await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages"), await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns")));
        model.Open();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await single).StatusCode);
        Assert.Equal([model.Answer, "first"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, busy)));
        Assert.Equal([model.Answer, "single"], Conversations.Contents(await ChatTests.HistoryAsync(client, pair.AccessToken, 10)));
        Assert.Equal(HttpStatusCode.OK, (await Conversations.SendAsync(client, pair.AccessToken, busy, "after")).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task EmptyingTheSingleChatWaitsOnlyForTheDefaultConversation(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var other = await Conversations.CreateIdAsync(client, pair.AccessToken, "other");
        var answering = Conversations.SendAsync(client, pair.AccessToken, other, "elsewhere");
        await model.WaitUntilHeldAsync(1);

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/chat/history", pair.AccessToken)).StatusCode);

        var single = client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "here")), Ct);
        await model.WaitUntilHeldAsync(2);
        await ApiPipelineTests.AssertProblemAsync(await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/chat/history", pair.AccessToken), HttpStatusCode.Conflict, "agent_busy");
        Assert.Equal(2, (await ChatTests.HistoryAsync(client, pair.AccessToken, 10)).Count);
        model.Open();
        Assert.Equal(HttpStatusCode.OK, (await single).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await answering).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/chat/history", pair.AccessToken)).StatusCode);
        Assert.Empty(await ChatTests.HistoryAsync(client, pair.AccessToken, 10));
        Assert.Equal([model.Answer, "elsewhere"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, other)));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheLimitOfConcurrentTurnsPerUserIsConfigurable(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithSetting("Chat:MaxConcurrentTurnsPerUser", "3").WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var ids = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add(await Conversations.CreateIdAsync(client, pair.AccessToken, $"conversation {i}"));
        }

        var running = ids.Take(3).Select(id => Conversations.SendAsync(client, pair.AccessToken, id, "hold")).ToList();
        await model.WaitUntilHeldAsync(3);
        var refused = await Conversations.SendAsync(client, pair.AccessToken, ids[3], "fourth");

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "too_many_turns")).RootElement;
        Assert.Equal(3, problem.GetProperty("max_concurrent_turns").GetInt32());
        model.Open();
        Assert.All(await Task.WhenAll(running), answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Assert.Equal(3, model.MaxHeld);
        Assert.Empty(await Conversations.MessagesAsync(client, pair.AccessToken, ids[3]));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task FiftyParallelTurnsAppendingToOneBlockLoseNoAppend(StoreProvider provider)
    {
        await using var api = await OnAsync(ParallelAppends(new ApiFactory()), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);

        var turns = await AppendInParallelAsync(client, pair.AccessToken);

        Assert.All(turns, turn => Assert.Equal($"[offline model] Got it. I've noted \"{turn.Line}\" in my memory.", turn.Answer));
        var block = await HumanBlockAsync(client, pair.AccessToken);
        Assert.Equal(turns.Select(t => t.Line).Order(StringComparer.Ordinal), block.Split('\n').Order(StringComparer.Ordinal));
        var changes = await ChangesAsync(client, pair.AccessToken);
        AssertAppendedOneAfterAnother(changes, turns, block);
        Assert.Equal(turns.Select(t => t.TurnId).Order(), changes.Select(c => c.GetProperty("source").GetProperty("turn_id").GetGuid()).Order());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ParallelTurnsAppendingToALimitedBlockStopAtTheLimitAndItHoldsExactlyTheAcceptedAppends(StoreProvider provider)
    {
        // Each line is "Likes: thing-NN" (15 characters), joined by newlines: exactly 20 of the 50 fit in 20 × 16 - 1.
        const int fits = 20;
        const int limit = (fits * 16) - 1;
        await using var api = await OnAsync(ParallelAppends(new ApiFactory()).WithSetting("Agents:HumanLimit", limit.ToString(CultureInfo.InvariantCulture)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);

        var turns = await AppendInParallelAsync(client, pair.AccessToken);

        var accepted = turns.Where(t => t.Answer.Contains("Got it.", StringComparison.Ordinal)).ToList();
        var refused = turns.Where(t => t.Answer.StartsWith("[offline model] I couldn't save that: Error:", StringComparison.Ordinal)).ToList();
        Assert.Equal((fits, ParallelTurns - fits), (accepted.Count, refused.Count));
        var block = await HumanBlockAsync(client, pair.AccessToken);
        Assert.Equal(limit, block.Length);
        Assert.Equal(accepted.Select(t => t.Line).Order(StringComparer.Ordinal), block.Split('\n').Order(StringComparer.Ordinal));
        Assert.All(refused, turn => Assert.DoesNotContain(turn.Line, block.Split('\n')));

        // Every accepted append is in the change log, one after another and never past the limit; no refused one is.
        var changes = await ChangesAsync(client, pair.AccessToken);
        AssertAppendedOneAfterAnother(changes, accepted, block);
        Assert.All(changes, change => Assert.True(change.GetProperty("new_value").GetString()!.Length <= limit));
        Assert.Equal(accepted.Select(t => t.TurnId).Order(), changes.Select(c => c.GetProperty("source").GetProperty("turn_id").GetGuid()).Order());
    }

    /// <summary>
    /// The offline model behind a barrier of 16 (as many workers as the API runs): that many turns reach it at once, so
    /// their appends race; one user may run all fifty turns.
    /// </summary>
    private static ApiFactory ParallelAppends(ApiFactory api) => api
        .WithSetting("Chat:MaxConcurrentTurnsPerUser", ParallelTurns.ToString(CultureInfo.InvariantCulture))
        .WithSetting("Chat:RateLimits:MessagesPerMinute", ParallelTurns.ToString(CultureInfo.InvariantCulture))
        .WithSetting("Chat:Workers", "16")
        .WithServices(s => s.UseModel(sp => new BarrierChatClient(new OfflineChatClient(sp.GetRequiredService<TokenCounter>()), 16)));

    /// <summary>Fifty conversations, and in each at once "I like thing-NN" (the offline model appends <c>Likes: thing-NN</c> to the human block).</summary>
    private static async Task<List<AppendTurn>> AppendInParallelAsync(HttpClient client, string token)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < ParallelTurns; i++)
        {
            ids.Add(await Conversations.CreateIdAsync(client, token, $"likes {i:D2}"));
        }

        var answers = await Task.WhenAll(ids.Select((id, i) => Conversations.AnswerAsync(client, token, id, $"I like thing-{i:D2}")));
        return answers.Select((answer, i) => new AppendTurn(
            ids[i], answer.GetProperty("turn_id").GetGuid(), $"Likes: thing-{i:D2}", answer.GetProperty("assistant_message").GetProperty("content").GetString()!)).ToList();
    }

    /// <summary>Each change is one turn's append to the value the previous change left, by that turn's tool in its conversation.</summary>
    private static void AssertAppendedOneAfterAnother(List<JsonElement> newestFirst, IReadOnlyList<AppendTurn> turns, string block)
    {
        var byTurn = turns.ToDictionary(t => t.TurnId);
        var value = "";
        foreach (var change in Enumerable.Reverse(newestFirst))
        {
            var source = change.GetProperty("source");
            var turn = byTurn[source.GetProperty("turn_id").GetGuid()];
            Assert.Equal(("human", "tool", turn.ConversationId), (change.GetProperty("label").GetString(), source.GetProperty("kind").GetString(), source.GetProperty("conversation_id").GetGuid()));
            Assert.Equal(value, change.GetProperty("old_value").GetString());
            value = value.Length == 0 ? turn.Line : $"{value}\n{turn.Line}";
            Assert.Equal(value, change.GetProperty("new_value").GetString());
        }

        Assert.Equal(turns.Count, newestFirst.Count);
        Assert.Equal(block, value);
    }

    private static async Task<string> HumanBlockAsync(HttpClient client, string token) =>
        (await ConversationTests.GetJsonAsync(client, token, "/api/v1/agent/memory")).GetProperty("blocks").EnumerateArray()
            .Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString()!;

    private static async Task<List<JsonElement>> ChangesAsync(HttpClient client, string token) =>
        (await ConversationTests.GetJsonAsync(client, token, "/api/v1/agent/memory/changes?limit=200")).GetProperty("changes").EnumerateArray().ToList();

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;

    private sealed record AppendTurn(Guid ConversationId, Guid TurnId, string Line, string Answer);
}
