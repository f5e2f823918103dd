using AiChat.Api.Data;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Chat;

/// <summary>Chat turns over real HTTP: streaming, JSON, resume, idempotency, one turn at a time, history.</summary>
[Trait("Category", "Chat")]
public sealed class ChatTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AStreamedTurnThroughTheGatewayAndAJsonTurnLeaveTheSameHistory(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await new ApiFactory().OnAsync(provider, postgres));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync(name: null);

        var (response, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "Hello, my name is Ana"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        var events = await reader.ReadAllAsync();

        Assert.Equal("turn.started", events[0].Event);
        Assert.Equal("turn.completed", events[^1].Event);
        Assert.Equal(Enumerable.Range(1, events.Count), events.Select(e => e.Id));
        Assert.Contains(events, e => e.Event == "tool.call" && e.Data.GetProperty("name").GetString() == "core_memory_append");
        Assert.Contains(events, e => e.Event == "memory.updated");
        Assert.Contains(events, e => e.Event == "usage");
        var streamedText = string.Concat(events.Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString()));
        var completed = events[^1].Data.GetProperty("assistant_message");
        Assert.Equal(streamedText, completed.GetProperty("content").GetString());

        var json = await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "What is my name?")), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        var result = await json.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Contains("Ana", result.GetProperty("assistant_message").GetProperty("content").GetString());
        var usage = result.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());

        var history = await HistoryAsync(client, pair.AccessToken, 10);
        Assert.Equal(["assistant", "user", "assistant", "user"], history.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(result.GetProperty("assistant_message").GetProperty("content").GetString(), history[0].GetProperty("content").GetString());
        Assert.Equal("What is my name?", history[1].GetProperty("content").GetString());
        Assert.Equal(streamedText, history[2].GetProperty("content").GetString());
        Assert.Equal(completed.GetProperty("id").GetGuid(), history[2].GetProperty("id").GetGuid());
        Assert.Equal(completed.GetProperty("created_at").GetDateTimeOffset(), history[2].GetProperty("created_at").GetDateTimeOffset());
        Assert.All(history, m => Assert.Equal("complete", m.GetProperty("status").GetString()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AClientThatLeavesMidTurnDoesNotStopIt(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("a late answer")) { Delay = TimeSpan.FromSeconds(1) };
        await using var system = RunningSystem.Start(await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();

        var (response, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "take your time"));
        Assert.Equal("turn.started", (await reader.NextAsync(TestContext.Current.CancellationToken))!.Event);
        response.Dispose();

        var history = await WaitForAsync(async () =>
        {
            var messages = await HistoryAsync(client, pair.AccessToken, 10);
            return messages.Count == 2 && messages[0].GetProperty("status").GetString() == "complete" ? messages : null;
        });
        Assert.Equal("a late answer", history[0].GetProperty("content").GetString());
        Assert.Equal("take your time", history[1].GetProperty("content").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ResumingAFinishedTurnReplaysExactlyWhatCameAfterTheLastEventId(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "my name is Ana"));
        var all = await reader.ReadAllAsync();
        var turnId = all[0].Data.GetProperty("turn_id").GetGuid();

        for (var last = 0; last <= all.Count; last++)
        {
            var (response, resumed) = await SseReader.OpenAsync(client, SseReader.Resume(pair.AccessToken, turnId, last == 0 ? null : last));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var replay = await resumed.ReadAllAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(all.Skip(last).Select(e => (e.Id, e.Event, e.Data.GetRawText())), replay.Select(e => (e.Id, e.Event, e.Data.GetRawText())));
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ResumingARunningTurnMissesNothingAndRepeatsNothing(StoreProvider provider)
    {
        var model = new SlowStreamingClient(words: 12, delay: TimeSpan.FromMilliseconds(120));
        await using var api = await new ApiFactory().WithSetting("Chat:DeltaCoalescing", "00:00:00").WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var (first, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "tell me a story"));
        var seen = new List<SseEvent>();
        for (var i = 0; i < 4; i++)
        {
            seen.Add((await reader.NextAsync(TestContext.Current.CancellationToken))!);
        }

        first.Dispose(); // the connection drops mid-turn
        var turnId = seen[0].Data.GetProperty("turn_id").GetGuid();

        var positions = new List<int>();
        while (seen[^1].Event is not ("turn.completed" or "turn.failed"))
        {
            var (response, resumed) = await SseReader.OpenAsync(client, SseReader.Resume(pair.AccessToken, turnId, seen[^1].Id));
            positions.Add(seen[^1].Id);
            for (var i = 0; i < 3 && await resumed.NextAsync(TestContext.Current.CancellationToken) is { } next; i++)
            {
                seen.Add(next);
                if (next.Event is "turn.completed" or "turn.failed")
                {
                    break;
                }
            }

            response.Dispose();
        }

        // How many reconnects fit in the turn depends on timing; what is exact is that none of them lost or repeated an event.
        Assert.True(positions.Count >= 3, "resumed several times while the turn ran");
        Assert.Equal(Enumerable.Range(1, seen.Count), seen.Select(e => e.Id));
        Assert.Equal("turn.completed", seen[^1].Event);
        Assert.Equal(model.FullText, string.Concat(seen.Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString())));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnUnknownTurnOrAnotherUsersTurnIsNotFound(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var bob = await client.RegisterAsync();
        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(ana.AccessToken, "hello"));
        var turnId = (await reader.ReadAllAsync())[0].Data.GetProperty("turn_id").GetGuid();

        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(SseReader.Resume(bob.AccessToken, turnId, null), TestContext.Current.CancellationToken), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(SseReader.Resume(ana.AccessToken, Guid.NewGuid(), null), TestContext.Current.CancellationToken), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(SseReader.Resume(ana.AccessToken, turnId, -1), TestContext.Current.CancellationToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        var cancelOther = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{turnId}/cancel", bob.AccessToken);
        await ApiPipelineTests.AssertProblemAsync(cancelOther, HttpStatusCode.NotFound, "not_found");
        Assert.Empty(await HistoryAsync(client, bob.AccessToken, 10));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARetryWithTheSameIdempotencyKeyAttachesToTheSameTurn(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("once")) { Delay = TimeSpan.FromMilliseconds(300) };
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => client.SendAsync(Json(SseReader.Send(pair.AccessToken, "hello", "key-1")), TestContext.Current.CancellationToken)));
        var again = await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "hello", "key-1")), TestContext.Current.CancellationToken);

        var turnIds = new List<Guid>();
        foreach (var answer in answers.Append(again))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            turnIds.Add((await answer.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("turn_id").GetGuid());
        }

        Assert.Single(turnIds.Distinct());
        Assert.Equal(1, model.Calls);
        Assert.Equal(2, (await HistoryAsync(client, pair.AccessToken, 10)).Count);

        var different = await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "something else", "key-1")), TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(different, HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.Equal(2, (await HistoryAsync(client, pair.AccessToken, 10)).Count);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OnlyOneOfManyConcurrentMessagesToAnAgentRunsTheOthersAreBusy(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("done")) { Delay = TimeSpan.FromMilliseconds(500) };
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => client.SendAsync(Json(SseReader.Send(pair.AccessToken, $"message {i}")), TestContext.Current.CancellationToken)));

        Assert.Equal(1, answers.Count(a => a.StatusCode == HttpStatusCode.OK));
        foreach (var busy in answers.Where(a => a.StatusCode != HttpStatusCode.OK))
        {
            await ApiPipelineTests.AssertProblemAsync(busy, HttpStatusCode.Conflict, "agent_busy");
        }

        Assert.Equal(2, (await HistoryAsync(client, pair.AccessToken, 20)).Count);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "after")), TestContext.Current.CancellationToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task HistoryPagesStayStableWhileTurnsAreAdded(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(Json(SseReader.Send(pair.AccessToken, $"first {i}")), TestContext.Current.CancellationToken);
        }

        var before = await HistoryAsync(client, pair.AccessToken, 100);
        var collected = new List<Guid>();
        string? cursor = null;
        var page = 0;
        do
        {
            var response = await client.GetWithTokenAsync($"/api/v1/chat/history?limit=2{(cursor is null ? "" : $"&before={cursor}")}", pair.AccessToken);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            collected.AddRange(body.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));
            cursor = body.GetProperty("next_cursor").GetString();
            if (page++ == 0)
            {
                // New turns arrive while the client pages back through the older ones.
                await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "during paging")), TestContext.Current.CancellationToken);
            }
        }
        while (cursor is not null);

        Assert.Equal(before.Select(m => m.GetProperty("id").GetGuid()), collected);
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/chat/history?before=nonsense", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/chat/history?limit=0", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingTheHistoryRemovesEveryMessage(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "hello")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/chat/history", pair.AccessToken)).StatusCode);

        Assert.Empty(await HistoryAsync(client, pair.AccessToken, 10));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM turn_events"));
    }

    public static TheoryData<StoreProvider, string?, HttpStatusCode, string> BadMessages()
    {
        var data = new TheoryData<StoreProvider, string?, HttpStatusCode, string>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            data.Add(provider, "", HttpStatusCode.UnprocessableEntity, "validation_failed");
            data.Add(provider, "   \n\t ", HttpStatusCode.UnprocessableEntity, "validation_failed");
            data.Add(provider, null, HttpStatusCode.UnprocessableEntity, "validation_failed");
            data.Add(provider, "x2001", HttpStatusCode.RequestEntityTooLarge, "message_too_long");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BadMessages))]
    public async Task ABadMessageIsRefusedAndNothingIsStored(StoreProvider provider, string? content, HttpStatusCode status, string code)
    {
        await using var api = await new ApiFactory().WithSetting("Chat:MaxMessageChars", "2000").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/chat/message", pair.AccessToken, new { content = content == "x2001" ? new string('x', 2001) : content });

        await ApiPipelineTests.AssertProblemAsync(response, status, code);
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM messages"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM turns"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ACancelledTurnKeepsWhatWasSaidAndIsMarkedCancelled(StoreProvider provider)
    {
        var model = new SlowStreamingClient(words: 50, delay: TimeSpan.FromMilliseconds(100));
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "a long one please"));
        var started = (await reader.NextAsync(TestContext.Current.CancellationToken))!;
        await reader.NextAsync(TestContext.Current.CancellationToken);
        var turnId = started.Data.GetProperty("turn_id").GetGuid();

        var cancel = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{turnId}/cancel", pair.AccessToken);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var rest = await reader.ReadAllAsync();

        Assert.Equal("turn.failed", rest[^1].Event);
        Assert.Equal("cancelled", rest[^1].Data.GetProperty("code").GetString());
        var history = await HistoryAsync(client, pair.AccessToken, 10);
        Assert.Equal("cancelled", history[0].GetProperty("status").GetString());
        Assert.NotEqual(model.FullText, history[0].GetProperty("content").GetString());
        Assert.Equal(HttpStatusCode.Conflict, (await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{turnId}/cancel", pair.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "next")), TestContext.Current.CancellationToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhenTheQueueIsFullANewMessageGetsServiceUnavailableAndNothingIsStored(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("done")) { Delay = TimeSpan.FromSeconds(2) };
        await using var api = await new ApiFactory().WithSetting("Chat:Workers", "1").WithSetting("Chat:QueueCapacity", "1").WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var users = new List<TokenPair>();
        for (var i = 0; i < 3; i++)
        {
            users.Add(await client.RegisterAsync());
        }

        var running = client.SendAsync(Json(SseReader.Send(users[0].AccessToken, "first")), TestContext.Current.CancellationToken);
        await WaitForAsync(() => Task.FromResult(model.Calls == 1 ? (object)true : null));
        var queued = client.SendAsync(Json(SseReader.Send(users[1].AccessToken, "second")), TestContext.Current.CancellationToken);

        // A turn takes its place in the queue before it is stored: once the second one's row is there, the queue is full.
        await WaitForAsync(async () => await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM turns") == 2 ? (object)true : null);
        var refused = await client.SendAsync(Json(SseReader.Send(users[2].AccessToken, "third")), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable, "server_busy");
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Empty(await HistoryAsync(client, users[2].AccessToken, 10));
        Assert.Equal(HttpStatusCode.OK, (await running).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await queued).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AQuietStreamSendsKeepAliveComments(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => ScriptedStep.Say("finally")) { Delay = TimeSpan.FromSeconds(1.2) };
        await using var api = await new ApiFactory().WithSetting("Chat:KeepAliveInterval", "00:00:00.3").WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "hello"));
        var events = await reader.ReadAllAsync();

        Assert.Equal("turn.completed", events[^1].Event);
        // About four fit in the model's 1.2 s silence at 0.3 s; scheduling under load may drop one, so the floor is asserted.
        Assert.True(reader.Comments >= 2, $"{reader.Comments} keep-alive comments");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AFailingModelFailsTheTurnWithAProblemAndKeepsTheUsersMessage(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, _, _) => throw new HttpRequestException("connection refused"));
        await using var api = await new ApiFactory().WithServices(s => s.UseModel(model)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "hello?"));
        var events = await reader.ReadAllAsync();
        var json = await client.SendAsync(Json(SseReader.Send(pair.AccessToken, "again?")), TestContext.Current.CancellationToken);

        Assert.Equal("turn.failed", events[^1].Event);
        Assert.Equal("llm_unreachable", events[^1].Data.GetProperty("code").GetString());
        Assert.Equal(502, events[^1].Data.GetProperty("status").GetInt32());
        await ApiPipelineTests.AssertProblemAsync(json, HttpStatusCode.BadGateway, "llm_unreachable");
        var history = await HistoryAsync(client, pair.AccessToken, 10);
        Assert.Equal(["failed", "complete", "failed", "complete"], history.Select(m => m.GetProperty("status").GetString()));
        Assert.Equal("hello?", history[3].GetProperty("content").GetString());
    }

    internal static HttpRequestMessage Json(HttpRequestMessage request)
    {
        request.Headers.Accept.ParseAdd("application/json");
        return request;
    }

    internal static async Task<List<JsonElement>> HistoryAsync(HttpClient client, string accessToken, int limit)
    {
        var response = await client.GetWithTokenAsync($"/api/v1/chat/history?limit={limit}", accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("messages").EnumerateArray().ToList();
    }

    /// <summary>
    /// Names the user's default conversation, so its first exchange makes no title call: for tests that count a turn's
    /// own model calls, costs or store round trips (the title call is a separate, later call).
    /// </summary>
    internal static async Task NameDefaultConversationAsync(HttpClient client, string accessToken, string title = "Named by the test")
    {
        var id = await ConversationRequests.DefaultAsync(client, accessToken);
        Assert.Equal(HttpStatusCode.OK, (await client.SendWithTokenAsync(HttpMethod.Patch, $"/api/v1/conversations/{id}", accessToken, new { title })).StatusCode);
    }

    internal static async Task<T> WaitForAsync<T>(Func<Task<T?>> probe, TimeSpan? timeout = null) where T : class
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, "the condition was not met in time");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}

/// <summary>A model that streams a known text one word at a time, slowly; a conversation's title request it answers at once.</summary>
public sealed class SlowStreamingClient(int words, TimeSpan delay) : IChatClient
{
    public string FullText { get; } = string.Join(" ", Enumerable.Range(1, words).Select(i => $"word{i}"));

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (TitleRequests.Is(messages))
        {
            await foreach (var update in TitleRequests.AnswerAsync("A slow title"))
            {
                yield return update;
            }

            yield break;
        }

        var parts = FullText.Split(' ');
        for (var i = 0; i < parts.Length; i++)
        {
            await Task.Delay(delay, cancellationToken);
            yield return new ChatResponseUpdate(ChatRole.Assistant, i == 0 ? parts[i] : " " + parts[i]);
        }

        yield return new ChatResponseUpdate(ChatRole.Assistant, []) { FinishReason = ChatFinishReason.Stop };
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = 50, OutputTokenCount = parts.Length })]);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
