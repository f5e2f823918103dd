using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Chat;

/// <summary>
/// Messages in conversations over real HTTP on SQLite and Postgres: the /chat/message contract per conversation,
/// separate histories, one memory shared by all of them, a model per conversation, and no way into another user's.
/// </summary>
[Trait("Category", "Chat")]
public sealed class ConversationMessageTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AJsonMessageToAConversationIsAnsweredExactlyAsChatMessageIs(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "JSON");

        var answer = await Conversations.AnswerAsync(client, pair.AccessToken, id, "hello");
        var single = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello")), Ct);

        Assert.Equal(HttpStatusCode.OK, single.StatusCode);
        Assert.Equal(Shape(await single.Content.ReadFromJsonAsync<JsonElement>(Ct)), Shape(answer));
        Assert.Equal(["turn_id", "user_message", "assistant_message", "usage", "budget"], answer.EnumerateObject().Select(p => p.Name));
        var user = answer.GetProperty("user_message");
        var assistant = answer.GetProperty("assistant_message");
        Assert.Equal(("user", "hello", "complete"), (user.GetProperty("role").GetString(), user.GetProperty("content").GetString(), user.GetProperty("status").GetString()));
        Assert.Equal(("assistant", "complete"), (assistant.GetProperty("role").GetString(), assistant.GetProperty("status").GetString()));
        Assert.StartsWith("[offline model]", assistant.GetProperty("content").GetString());
        var usage = answer.GetProperty("usage");
        Assert.Equal(usage.GetRawText(), assistant.GetProperty("usage").GetRawText());
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(10m, answer.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());

        var messages = await Conversations.MessagesAsync(client, pair.AccessToken, id);
        // The history is the answer's messages, and says how many other answers the assistant's has (none yet).
        Assert.Equal(user.GetRawText(), messages[1].GetRawText());
        Assert.Equal(0, messages[0].GetProperty("alternatives").GetInt32());
        Assert.Equal(
            assistant.EnumerateObject().Select(p => (p.Name, p.Value.GetRawText())),
            messages[0].EnumerateObject().Where(p => p.Name != "alternatives").Select(p => (p.Name, p.Value.GetRawText())));
        var conversation = await Conversations.GetAsync(client, pair.AccessToken, id);
        Assert.Equal(2, conversation.GetProperty("message_count").GetInt32());
        Assert.Equal(assistant.GetProperty("created_at").GetDateTimeOffset(), conversation.GetProperty("last_message_at").GetDateTimeOffset());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AStreamedMessageToAConversationSendsTurnStartedThroughTurnCompleted(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "SSE");

        var (response, reader) = await SseReader.OpenAsync(client, Conversations.Send(pair.AccessToken, id, "Hello, my name is Ana"));
        var events = await reader.ReadAllAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Enumerable.Range(1, events.Count), events.Select(e => e.Id));
        Assert.Equal("turn.started", events[0].Event);
        Assert.Equal(["turn_id", "user_message_id", "assistant_message_id"], events[0].Data.EnumerateObject().Select(p => p.Name));
        Assert.Equal("turn.completed", events[^1].Event);
        Assert.Contains(events, e => e.Event == "tool.call" && e.Data.GetProperty("name").GetString() == "core_memory_append");
        Assert.Contains(events, e => e.Event == "memory.updated" && e.Data.GetProperty("label").GetString() == "human");
        Assert.Contains(events, e => e.Event == "usage");
        var completed = events[^1].Data;
        Assert.Equal(["assistant_message", "usage", "budget"], completed.EnumerateObject().Select(p => p.Name));
        var streamed = string.Concat(events.Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString()));
        Assert.Equal(streamed, completed.GetProperty("assistant_message").GetProperty("content").GetString());

        var messages = await Conversations.MessagesAsync(client, pair.AccessToken, id);
        Assert.Equal(
            [events[0].Data.GetProperty("assistant_message_id").GetGuid(), events[0].Data.GetProperty("user_message_id").GetGuid()],
            messages.Select(m => m.GetProperty("id").GetGuid()));
        Assert.Equal(streamed, messages[0].GetProperty("content").GetString());
        Assert.Empty(await ChatTests.HistoryAsync(client, pair.AccessToken, 10));

        // A conversation's turn resumes like any other.
        var (_, resumed) = await SseReader.OpenAsync(client, SseReader.Resume(pair.AccessToken, events[0].Data.GetProperty("turn_id").GetGuid(), 2));
        Assert.Equal(events.Skip(2).Select(e => (e.Id, e.Event, e.Data.GetRawText())), (await resumed.ReadAllAsync()).Select(e => (e.Id, e.Event, e.Data.GetRawText())));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheSameIdempotencyKeyAttachesToTheSameTurnOfTheSameConversationOnly(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("once")) { Delay = TimeSpan.FromMilliseconds(300) };
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "first");
        var other = await Conversations.CreateIdAsync(client, pair.AccessToken, "second");

        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Conversations.SendAsync(client, pair.AccessToken, id, "hello", "key-1")));
        var again = await Conversations.SendAsync(client, pair.AccessToken, id, "hello", "key-1");

        var turnIds = new List<Guid>();
        foreach (var answer in answers.Append(again))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            turnIds.Add((await answer.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("turn_id").GetGuid());
        }

        Assert.Single(turnIds.Distinct());
        Assert.Equal(1, model.Calls);
        Assert.Equal(2, (await Conversations.MessagesAsync(client, pair.AccessToken, id)).Count);
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns"));

        // A key names one request: other text, the same text to another conversation, or to the single chat is another one.
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, id, "something else", "key-1"), HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, other, "hello", "key-1"), HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello", "key-1")), Ct), HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.Equal(2, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages"));
        Assert.Equal(1, model.Calls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AConversationsMessagesPageNewestFirstWithoutDuplicatesOrGaps(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "paged");
        foreach (var text in new[] { "one", "two", "three" })
        {
            await Conversations.AnswerAsync(client, pair.AccessToken, id, text);
        }

        var all = await Conversations.MessagesAsync(client, pair.AccessToken, id);
        var paged = new List<Guid>();
        var sizes = new List<int>();
        string? cursor = null;
        do
        {
            var page = await Conversations.MessagesPageAsync(client, pair.AccessToken, id, $"?limit=2{(cursor is null ? "" : $"&before={cursor}")}");
            var ids = page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()).ToList();
            sizes.Add(ids.Count);
            paged.AddRange(ids);
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(6, all.Count);
        Assert.Equal(["three", "two", "one"], Conversations.Contents(all.Where(m => m.GetProperty("role").GetString() == "user")));
        Assert.Equal([2, 2, 2], sizes);
        Assert.Equal(all.Select(m => m.GetProperty("id").GetGuid()), paged);
        foreach (var bad in new[] { "?limit=0", "?limit=201", "?before=nonsense" })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync($"{Conversations.Path}/{id}/messages{bad}", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ConversationsKeepSeparateHistoriesAndTheSingleChatIsTheDefaultOneOnly(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("noted"));
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var defaultId = Assert.Single(await Conversations.ListIdsAsync(client, pair.AccessToken));
        var alpha = await Conversations.CreateIdAsync(client, pair.AccessToken, "alpha");
        var beta = await Conversations.CreateIdAsync(client, pair.AccessToken, "beta");

        await Conversations.AnswerAsync(client, pair.AccessToken, alpha, "alpha says hi");
        await Conversations.AnswerAsync(client, pair.AccessToken, beta, "beta says hi");
        Assert.Empty(await ChatTests.HistoryAsync(client, pair.AccessToken, 10));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "gamma says hi")), Ct)).StatusCode);

        Assert.Equal(["noted", "alpha says hi"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, alpha)));
        Assert.Equal(["noted", "beta says hi"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, beta)));
        Assert.Equal(["noted", "gamma says hi"], Conversations.Contents(await ChatTests.HistoryAsync(client, pair.AccessToken, 10)));
        Assert.Equal(
            (await ChatTests.HistoryAsync(client, pair.AccessToken, 10)).Select(m => m.GetRawText()),
            (await Conversations.MessagesAsync(client, pair.AccessToken, defaultId)).Select(m => m.GetRawText()));

        // Each turn's context is its own conversation's transcript.
        Assert.Equal(3, model.Received.Count);
        Assert.DoesNotContain(model.Received[1].Messages, m => m.Text.Contains("alpha", StringComparison.Ordinal));
        Assert.DoesNotContain(model.Received[2].Messages, m => m.Text.Contains("alpha", StringComparison.Ordinal) || m.Text.Contains("beta", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/chat/history", pair.AccessToken)).StatusCode);

        Assert.Empty(await ChatTests.HistoryAsync(client, pair.AccessToken, 10));
        var emptied = await Conversations.GetAsync(client, pair.AccessToken, defaultId);
        Assert.Equal((0, JsonValueKind.Null), (emptied.GetProperty("message_count").GetInt32(), emptied.GetProperty("last_message_at").ValueKind));
        Assert.Equal(["noted", "alpha says hi"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, alpha)));
        Assert.Equal(["noted", "beta says hi"], Conversations.Contents(await Conversations.MessagesAsync(client, pair.AccessToken, beta)));
        Assert.Equal(2, (await Conversations.GetAsync(client, pair.AccessToken, alpha)).GetProperty("message_count").GetInt32());
        Assert.Equal(4, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhatOneConversationLearnsAnotherKnowsAndDeletingTheFirstKeepsIt(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        var first = await Conversations.CreateIdAsync(client, pair.AccessToken, "introductions");
        var second = await Conversations.CreateIdAsync(client, pair.AccessToken, "later");
        var unknown = await Conversations.AnswerAsync(client, pair.AccessToken, second, "what is my name?");
        Assert.Contains("I don't know your name yet", unknown.GetProperty("assistant_message").GetProperty("content").GetString());

        await Conversations.AnswerAsync(client, pair.AccessToken, first, "my name is Ana");
        var known = await Conversations.AnswerAsync(client, pair.AccessToken, second, "what is my name?");

        Assert.Equal("[offline model] Your name is Ana. I have it in my memory.", known.GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await Conversations.DeleteAsync(client, pair.AccessToken, first)).StatusCode);

        var still = await Conversations.AnswerAsync(client, pair.AccessToken, second, "What's my name?");
        Assert.Equal("[offline model] Your name is Ana. I have it in my memory.", still.GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal(6, (await Conversations.MessagesAsync(client, pair.AccessToken, second)).Count);
        var change = Assert.Single((await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory/changes")).GetProperty("changes").EnumerateArray());
        Assert.Equal(("", "Name: Ana"), (change.GetProperty("old_value").GetString(), change.GetProperty("new_value").GetString()));
        Assert.Equal(first, change.GetProperty("source").GetProperty("conversation_id").GetGuid());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AConversationOnAnotherCatalogueModelCallsThatModelAndIsChargedItsPrice(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-conversations-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Text("priced per conversation", promptTokens: 1000, completionTokens: 100);
        await using var api = await OnAsync(ConversationTests.TwoModels(new ApiFactory())
            .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
            .WithSetting("Llm:ApiKey", llm.ApiKey), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var premium = await Conversations.CreateIdAsync(client, pair.AccessToken, "premium", "premium-model");
        var house = await Conversations.CreateIdAsync(client, pair.AccessToken, "house");

        var premiumAnswer = await Conversations.AnswerAsync(client, pair.AccessToken, premium, "hello");
        var houseAnswer = await Conversations.AnswerAsync(client, pair.AccessToken, house, "hello");

        // 1000 prompt and 100 completion tokens at each model's price per million.
        const decimal premiumCost = (1000 * 3m + 100 * 15m) / 1_000_000m;
        const decimal houseCost = (1000 * 1.25m + 100 * 5m) / 1_000_000m;
        Assert.Equal([("premium-model", 4000), ("house-model", 2000)], llm.Requests.Select(r => (r.Model, r.MaxTokens)));
        Assert.Equal(premiumCost, premiumAnswer.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(houseCost, houseAnswer.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(10m - premiumCost - houseCost, houseAnswer.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());
        var budget = await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/user/budget");
        Assert.Equal(premiumCost + houseCost, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(4_500_000, await LedgerAmountAsync(api, premiumAnswer, "premium-model"));
        Assert.Equal(1_750_000, await LedgerAmountAsync(api, houseAnswer, "house-model"));

        // Switching the conversation's model switches its next turn; an unknown one is refused and changes nothing.
        await ApiPipelineTests.AssertProblemAsync(await Conversations.PatchAsync(client, pair.AccessToken, premium, new { model = "gpt-99" }), HttpStatusCode.UnprocessableEntity, "unknown_model");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.PostAsync(client, pair.AccessToken, new { model = "gpt-99" }), HttpStatusCode.UnprocessableEntity, "unknown_model");
        Assert.Equal("premium-model", (await Conversations.GetAsync(client, pair.AccessToken, premium)).GetProperty("model").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Conversations.PatchAsync(client, pair.AccessToken, premium, new { model = "house-model" })).StatusCode);
        var switched = await Conversations.AnswerAsync(client, pair.AccessToken, premium, "hello again");
        Assert.Equal(("house-model", 2000), (llm.Requests[^1].Model, llm.Requests[^1].MaxTokens));
        Assert.Equal(houseCost, switched.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(3, llm.Requests.Count);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnotherUserCannotSeeOrTouchAConversationOrItsMemoryChanges(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync(name: null);
        var bob = await client.RegisterAsync(name: null);
        var anas = await Conversations.CreateAsync(client, ana.AccessToken, "Ana's");
        var id = anas.GetProperty("id").GetGuid();
        await Conversations.AnswerAsync(client, ana.AccessToken, id, "my name is Ana");
        var archived = await Conversations.CreateIdAsync(client, ana.AccessToken, "Ana's archive");
        await Conversations.PatchAsync(client, ana.AccessToken, archived, new { archived = true });
        var change = (await ConversationTests.GetJsonAsync(client, ana.AccessToken, "/api/v1/agent/memory/changes")).GetProperty("changes")[0].GetProperty("id").GetGuid();
        var anasBefore = await Conversations.GetAsync(client, ana.AccessToken, id);
        var bobsDefault = Assert.Single(await Conversations.ListIdsAsync(client, bob.AccessToken));

        foreach (var attempt in new Func<Task<HttpResponseMessage>>[]
        {
            () => client.GetWithTokenAsync($"{Conversations.Path}/{id}", bob.AccessToken),
            () => Conversations.PatchAsync(client, bob.AccessToken, id, new { title = "Bob's now", archived = true }),
            () => Conversations.DeleteAsync(client, bob.AccessToken, id),
            () => client.GetWithTokenAsync($"{Conversations.Path}/{id}/messages", bob.AccessToken),
            () => Conversations.SendAsync(client, bob.AccessToken, id, "hello, Ana's agent"),
            async () => (await SseReader.OpenAsync(client, Conversations.Send(bob.AccessToken, id, "hello, Ana's agent"))).Response,
            () => client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/agent/memory/changes/{change}/revert", bob.AccessToken),
        })
        {
            await ApiPipelineTests.AssertProblemAsync(await attempt(), HttpStatusCode.NotFound, "not_found");
        }

        Assert.Equal([bobsDefault], await Conversations.ListIdsAsync(client, bob.AccessToken));
        Assert.Empty(await Conversations.ListIdsAsync(client, bob.AccessToken, "?archived=true"));
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns WHERE user_id = @bob", new { bob = bob.UserId }));
        Assert.Equal(anasBefore.GetRawText(), (await Conversations.GetAsync(client, ana.AccessToken, id)).GetRawText());
        Assert.Equal(2, (await Conversations.MessagesAsync(client, ana.AccessToken, id)).Count);
        Assert.Equal([archived], await Conversations.ListIdsAsync(client, ana.AccessToken, "?archived=true"));
        var human = (await ConversationTests.GetJsonAsync(client, ana.AccessToken, "/api/v1/agent/memory")).GetProperty("blocks").EnumerateArray()
            .Single(b => b.GetProperty("label").GetString() == "human");
        Assert.Equal("Name: Ana", human.GetProperty("value").GetString());
    }

    /// <summary>The settled ledger charge of an answer's turn (nano-USD), asserting it was made on <paramref name="model"/>.</summary>
    private static async Task<long> LedgerAmountAsync(ApiFactory api, JsonElement answer, string model)
    {
        var turnId = answer.GetProperty("turn_id").GetGuid();
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM ledger_entries WHERE turn_id = @turnId AND state = 'settled' AND model = @model", new { turnId, model }));
        return await Conversations.CountAsync(api, "SELECT amount_nanousd FROM ledger_entries WHERE turn_id = @turnId AND state = 'settled'", new { turnId });
    }

    /// <summary>Every property path of a JSON document (arrays by their first item): its shape, without its values.</summary>
    private static List<string> Shape(JsonElement element, string at = "")
    {
        var paths = new List<string>();
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                paths.Add($"{at}.{property.Name}");
                paths.AddRange(Shape(property.Value, $"{at}.{property.Name}"));
            }
        }
        else if (element.ValueKind == JsonValueKind.Array && element.GetArrayLength() > 0)
        {
            paths.AddRange(Shape(element[0], $"{at}[]"));
        }

        return paths;
    }

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
