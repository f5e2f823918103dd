using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using static AiChat.Tests.Chat.ConversationRequests;

namespace AiChat.Tests.Chat;

/// <summary>Regenerating a conversation's last answer over HTTP, on SQLite and Postgres: a new turn, the old answer kept as an alternative.</summary>
[Trait("Category", "Chat")]
public sealed class RegenerateTests(PostgresServer postgres)
{
    // The offline model gets a price, so that every call is charged: a scripted call's 10 prompt and 2 completion tokens cost 0.014 USD.
    private const decimal CallCostUsd = (10 * 1000m + 2 * 2000m) / 1_000_000m;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegeneratingTheLastAnswerAnswersTheSameMessageAgainAndKeepsTheOldOneAsAnAlternative(StoreProvider provider)
    {
        var model = new ScriptedChatClient((call, _, _) => ScriptedStep.Say($"answer {call}"));
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, pair.AccessToken); // no title call: the charges are the turns'
        var conversation = await DefaultAsync(client, pair.AccessToken);
        var first = await AnswerAsync(client, Send(pair.AccessToken, conversation, "What is a monad?"));
        var question = first.GetProperty("user_message");
        var oldAnswer = first.GetProperty("assistant_message").GetProperty("id").GetGuid();

        var again = await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, oldAnswer));

        Assert.NotEqual(first.GetProperty("turn_id").GetGuid(), again.GetProperty("turn_id").GetGuid());
        Assert.Equal(question.GetRawText(), again.GetProperty("user_message").GetRawText());
        var newAnswer = again.GetProperty("assistant_message");
        Assert.Equal(("answer 2", "complete"), (newAnswer.GetProperty("content").GetString(), newAnswer.GetProperty("status").GetString()));
        Assert.Equal(CallCostUsd, again.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(10m - 2 * CallCostUsd, again.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());

        // The model was told the question once, and not the answer it replaces.
        var told = model.Received[^1].Messages;
        Assert.Single(told, m => m.Role == ChatRole.User && m.Text == "What is a monad?");
        Assert.DoesNotContain(told, m => m.Role == ChatRole.Assistant);
        Assert.Equal("What is a monad?", told[^1].Text);

        // Both histories show the current answer only, which says it has one alternative.
        var history = await MessagesAsync(client, pair.AccessToken, conversation);
        Assert.Equal(history.Select(m => m.GetRawText()), (await ChatTests.HistoryAsync(client, pair.AccessToken, 10)).Select(m => m.GetRawText()));
        Assert.Equal([newAnswer.GetProperty("id").GetGuid(), question.GetProperty("id").GetGuid()], history.Select(m => m.GetProperty("id").GetGuid()));
        Assert.Equal(1, history[0].GetProperty("alternatives").GetInt32());
        Assert.False(history[1].TryGetProperty("alternatives", out _));
        var alternative = Assert.Single(await AlternativesAsync(client, pair.AccessToken, conversation, newAnswer.GetProperty("id").GetGuid()));
        Assert.Equal((oldAnswer, "answer 1", "complete"), (alternative.GetProperty("id").GetGuid(), alternative.GetProperty("content").GetString(), alternative.GetProperty("status").GetString()));
        Assert.Equal(2, (await GetAsync(client, pair.AccessToken, conversation)).GetProperty("message_count").GetInt32());

        // A third answer: every answer lists the other two, oldest first.
        var third = (await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, newAnswer.GetProperty("id").GetGuid()))).GetProperty("assistant_message").GetProperty("id").GetGuid();
        Guid[] answers = [oldAnswer, newAnswer.GetProperty("id").GetGuid(), third];
        foreach (var answer in answers)
        {
            Assert.Equal(answers.Where(a => a != answer), (await AlternativesAsync(client, pair.AccessToken, conversation, answer)).Select(m => m.GetProperty("id").GetGuid()));
        }

        Assert.Empty(await AlternativesAsync(client, pair.AccessToken, conversation, question.GetProperty("id").GetGuid()));
        Assert.Equal(2, (await MessagesAsync(client, pair.AccessToken, conversation))[0].GetProperty("alternatives").GetInt32());
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(3 * CallCostUsd, budget.GetProperty("spent_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheOfflineModelAnswersARegeneratedMessageAsItWasAsked(StoreProvider provider)
    {
        await using var api = await ApiAsync(provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken, "Echoes");
        await AnswerAsync(client, Send(pair.AccessToken, conversation, "an earlier message"));
        var first = await AnswerAsync(client, Send(pair.AccessToken, conversation, "please say this again"));

        var again = await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, first.GetProperty("assistant_message").GetProperty("id").GetGuid()));

        var text = again.GetProperty("assistant_message").GetProperty("content").GetString();
        Assert.Equal(first.GetProperty("assistant_message").GetProperty("content").GetString(), text);
        Assert.EndsWith("You said: \"please say this again\"", text);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARegenerateStreamsLikeAMessageAndItsIdempotencyKeyAttachesToTheSameTurn(StoreProvider provider)
    {
        var model = new ScriptedChatClient((call, _, _) => ScriptedStep.Say($"answer {call}"));
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken, "Streams");
        var sendKey = $"send-{Guid.NewGuid():N}";
        var first = await AnswerAsync(client, WithKey(Send(pair.AccessToken, conversation, "hello"), sendKey));
        var oldAnswer = first.GetProperty("assistant_message").GetProperty("id").GetGuid();
        var key = $"regenerate-{Guid.NewGuid():N}";

        var (response, reader) = await SseReader.OpenAsync(client, Regenerate(pair.AccessToken, conversation, oldAnswer, key));
        var events = await reader.ReadAllAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("turn.started", events[0].Event);
        Assert.Equal(first.GetProperty("user_message").GetProperty("id").GetGuid(), events[0].Data.GetProperty("user_message_id").GetGuid());
        var newAnswer = events[0].Data.GetProperty("assistant_message_id").GetGuid();
        Assert.NotEqual(oldAnswer, newAnswer);
        Assert.Equal(Enumerable.Range(1, events.Count), events.Select(e => e.Id));
        Assert.Equal("answer 2", string.Concat(events.Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString())));
        Assert.Equal("turn.completed", events[^1].Event);
        Assert.Equal(newAnswer, events[^1].Data.GetProperty("assistant_message").GetProperty("id").GetGuid());

        var retried = await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, oldAnswer, key));
        Assert.Equal(events[0].Data.GetProperty("turn_id").GetGuid(), retried.GetProperty("turn_id").GetGuid());
        Assert.Equal("answer 2", retried.GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal(2, model.Calls);

        // A key names one request: the send's key does not regenerate, nor does the regenerate's key send.
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, conversation, newAnswer, sendKey)), Ct), HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(WithKey(Send(pair.AccessToken, conversation, "hello"), key)), Ct), HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, conversation, newAnswer, new string('k', 201))), Ct), HttpStatusCode.UnprocessableEntity, "validation_failed");
        Assert.Equal(2, model.Calls);
        Assert.Equal(2, await CountAsync(api, "SELECT COUNT(*) FROM turns WHERE conversation_id = @conversation", conversation));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OnlyTheConversationsLastCurrentAnswerCanBeRegeneratedAndOthersIdsAreNotFound(StoreProvider provider)
    {
        await using var api = await ApiAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var bob = await client.RegisterAsync();
        var conversation = await CreateAsync(client, ana.AccessToken, "Several answers");
        var first = await AnswerAsync(client, Send(ana.AccessToken, conversation, "first"));
        var second = await AnswerAsync(client, Send(ana.AccessToken, conversation, "second"));
        var last = second.GetProperty("assistant_message").GetProperty("id").GetGuid();
        var replaced = last;
        last = (await AnswerAsync(client, Regenerate(ana.AccessToken, conversation, last))).GetProperty("assistant_message").GetProperty("id").GetGuid();
        var before = await StateAsync(api);

        Guid[] notLast = [second.GetProperty("user_message").GetProperty("id").GetGuid(), first.GetProperty("assistant_message").GetProperty("id").GetGuid(), replaced];
        foreach (var message in notLast)
        {
            await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(Regenerate(ana.AccessToken, conversation, message)), Ct), HttpStatusCode.Conflict, "not_last_answer");
        }

        var other = await CreateAsync(client, ana.AccessToken, "Another");
        foreach (var (token, inConversation, message) in new[]
        {
            (ana.AccessToken, conversation, Guid.NewGuid()),
            (ana.AccessToken, Guid.NewGuid(), last),
            (ana.AccessToken, other, last),
            (bob.AccessToken, conversation, last),
        })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(Regenerate(token, inConversation, message)), Ct), HttpStatusCode.NotFound, "not_found");
            await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync($"/api/v1/conversations/{inConversation}/messages/{message}/alternatives", token), HttpStatusCode.NotFound, "not_found");
        }

        Assert.Equal(before, await StateAsync(api));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(Regenerate(ana.AccessToken, conversation, last)), Ct)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARegenerateWhileTheAnswerIsRunningIsBusyAndOneBeyondTheUsersTurnsIsTooMany(StoreProvider provider)
    {
        using var gate = new ManualResetEventSlim();
        var model = new ScriptedChatClient((_, messages, _) =>
        {
            if (messages[^1].Text == "wait for it")
            {
                gate.Wait(TimeSpan.FromSeconds(30));
            }

            return ScriptedStep.Say("done");
        });
        await using var api = await ApiAsync(provider, model, ("Chat:MaxConcurrentTurnsPerUser", "1"));
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var finished = await CreateAsync(client, pair.AccessToken, "Finished");
        var answered = (await AnswerAsync(client, Send(pair.AccessToken, finished, "quick"))).GetProperty("assistant_message").GetProperty("id").GetGuid();
        var running = await CreateAsync(client, pair.AccessToken, "Running");
        var (response, reader) = await SseReader.OpenAsync(client, Send(pair.AccessToken, running, "wait for it"));
        using var stream = response;
        var started = (await reader.NextAsync(Ct))!;
        Assert.Equal("turn.started", started.Event);
        await ChatTests.WaitForAsync(() => Task.FromResult(model.Calls == 2 ? (object)true : null)); // its call is reserved and waiting
        var before = await StateAsync(api);

        var busy = await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, running, started.Data.GetProperty("assistant_message_id").GetGuid())), Ct);
        var tooMany = await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, finished, answered)), Ct);

        await ApiPipelineTests.AssertProblemAsync(busy, HttpStatusCode.Conflict, "conversation_busy");
        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(tooMany, HttpStatusCode.TooManyRequests, "too_many_turns")).RootElement;
        Assert.Equal(1, problem.GetProperty("max_concurrent_turns").GetInt32());
        Assert.Equal(before, await StateAsync(api));
        gate.Set();
        Assert.Equal("turn.completed", (await reader.ReadAllAsync())[^1].Event);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, finished, answered)), Ct)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegeneratingAFailedAnswerIsTheRetryAndAFailedRegenerateStaysTheCurrentAnswer(StoreProvider provider)
    {
        var model = new ScriptedChatClient((call, _, _) => call == 2 ? ScriptedStep.Say("it worked") : throw new HttpRequestException("connection refused"));
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken);
        var failed = await client.SendAsync(ChatTests.Json(Send(pair.AccessToken, conversation, "Tell me about Lisbon")), Ct);
        var failure = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(failed, HttpStatusCode.BadGateway, "llm_unreachable")).RootElement;
        var failedAnswer = failure.GetProperty("assistant_message_id").GetGuid();

        var retry = await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, failedAnswer));

        var retried = retry.GetProperty("assistant_message").GetProperty("id").GetGuid();
        Assert.Equal("it worked", retry.GetProperty("assistant_message").GetProperty("content").GetString());
        var alternative = Assert.Single(await AlternativesAsync(client, pair.AccessToken, conversation, retried));
        Assert.Equal((failedAnswer, "failed"), (alternative.GetProperty("id").GetGuid(), alternative.GetProperty("status").GetString()));

        // The retry is the conversation's first completed exchange: it names the conversation.
        Assert.Equal("A scripted title", await TitleAsync(client, pair.AccessToken, conversation));

        var failedAgain = await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, conversation, retried)), Ct);
        var current = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(failedAgain, HttpStatusCode.BadGateway, "llm_unreachable")).RootElement.GetProperty("assistant_message_id").GetGuid();
        var history = await MessagesAsync(client, pair.AccessToken, conversation);
        Assert.Equal([(current, "failed", 2), (failure.GetProperty("user_message_id").GetGuid(), "complete", -1)],
            history.Select(m => (m.GetProperty("id").GetGuid(), m.GetProperty("status").GetString(), m.TryGetProperty("alternatives", out var n) ? n.GetInt32() : -1)));
        Assert.Equal([failedAnswer, retried], (await AlternativesAsync(client, pair.AccessToken, conversation, current)).Select(m => m.GetProperty("id").GetGuid()));
        Assert.Equal(1, model.TitleCalls);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheExportKeepsEveryAnswerAndSaysWhichOneReplacedIt(StoreProvider provider)
    {
        var model = new ScriptedChatClient((call, _, _) => ScriptedStep.Say($"answer {call}"));
        await using var api = await ApiAsync(provider, model);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await CreateAsync(client, pair.AccessToken, "Exported");
        var first = await AnswerAsync(client, Send(pair.AccessToken, conversation, "hello"));
        var oldAnswer = first.GetProperty("assistant_message").GetProperty("id").GetGuid();
        var newAnswer = (await AnswerAsync(client, Regenerate(pair.AccessToken, conversation, oldAnswer))).GetProperty("assistant_message").GetProperty("id").GetGuid();

        var export = await (await client.GetWithTokenAsync("/api/v1/user/export", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);

        var exported = export.GetProperty("conversation").GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("id").GetGuid() == conversation);
        Assert.Equal(
            [
                (first.GetProperty("user_message").GetProperty("id").GetGuid(), "user", "hello", (Guid?)null),
                (oldAnswer, "assistant", "answer 1", newAnswer),
                (newAnswer, "assistant", "answer 2", null),
            ],
            exported.GetProperty("messages").EnumerateArray().Select(m => (
                m.GetProperty("id").GetGuid(), m.GetProperty("role").GetString(), m.GetProperty("content").GetString(),
                m.GetProperty("replaced_by_id").ValueKind == JsonValueKind.Null ? (Guid?)null : m.GetProperty("replaced_by_id").GetGuid())));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ALettaAgentCannotRegenerateAndNothingIsStored(StoreProvider provider)
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var llm = await ChatCompletionsResponder.StartAsync();
        await using var api = await ApiAsync(provider, null,
            ("Agents:Runtime", "Letta"), ("Letta:BaseUrl", letta.Url.ToString()), ("Letta:Password", letta.Password), ("Letta:LlmBaseUrl", llm.BaseUrl));
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var conversation = await DefaultAsync(client, pair.AccessToken);
        llm.Reply("Hello from Letta.", prompt: 20, completion: 4);
        var answer = (await AnswerAsync(client, Send(pair.AccessToken, conversation, "hi"))).GetProperty("assistant_message").GetProperty("id").GetGuid();
        await TitleAsync(client, pair.AccessToken, conversation);
        var before = await StateAsync(api);

        var refused = await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, conversation, answer)), Ct);

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity, "regenerate_unsupported")).RootElement;
        Assert.Equal("letta", problem.GetProperty("runtime").GetString());
        Assert.Equal(before, await StateAsync(api));
        Assert.Single(letta.LlmCalls);
        await ApiPipelineTests.AssertProblemAsync(await client.SendAsync(ChatTests.Json(Regenerate(pair.AccessToken, conversation, Guid.NewGuid())), Ct), HttpStatusCode.NotFound, "not_found");
    }

    private static HttpRequestMessage WithKey(HttpRequestMessage request, string key)
    {
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    /// <summary>What a refused request must leave as it was: the turns, the messages, which answers were replaced, the ledger.</summary>
    private static async Task<string> StateAsync(ApiFactory api)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        var counts = await connection.QuerySingleAsync<(long, long, long, long, long)>(
            """
            SELECT (SELECT COUNT(*) FROM turns), (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM messages WHERE replaced_by_id IS NOT NULL),
                   (SELECT COUNT(*) FROM ledger_entries), (SELECT SUM(message_count) FROM conversations)
            """);
        return counts.ToString();
    }

    private static async Task<long> CountAsync(ApiFactory api, string sql, Guid conversation)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.ExecuteScalarAsync<long>(sql, new { conversation });
    }

    private async Task<ApiFactory> ApiAsync(StoreProvider provider, IChatClient? model = null, params (string Key, string Value)[] settings)
    {
        var api = new ApiFactory()
            .WithSetting("Billing:Prices:aichat-offline:InputPerMillionUsd", "1000")
            .WithSetting("Billing:Prices:aichat-offline:OutputPerMillionUsd", "2000");
        foreach (var (key, value) in settings)
        {
            api.WithSetting(key, value);
        }

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
