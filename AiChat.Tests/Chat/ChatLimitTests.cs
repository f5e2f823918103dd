using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Chat;

/// <summary>
/// Per-user limits, end to end through the gateway on SQLite and Postgres: messages per minute across every endpoint
/// that starts a turn (<c>Chat:RateLimits:MessagesPerMinute</c>) and open event streams (<c>Chat:MaxOpenStreamsPerUser</c>).
/// A refusal is a 429 problem with Retry-After that stores nothing; a closed stream gives its slot back at once.
/// </summary>
[Trait("Category", "Chat")]
public sealed class ChatLimitTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MessagesOverThePerMinuteLimitAreRefusedOnEveryTurnEndpointAndStoreNothing(StoreProvider provider)
    {
        var api = await OnAsync(new ApiFactory().WithSetting("Chat:RateLimits:MessagesPerMinute", "3"), provider);
        await using var system = RunningSystem.Start(api);
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var other = await client.RegisterAsync();
        var conversation = await ConversationRequests.CreateAsync(client, pair.AccessToken);

        // Three turns, one through each endpoint that starts one: they share the user's allowance.
        await ConversationRequests.AnswerAsync(client, SseReader.Send(pair.AccessToken, "one"));
        var answer = await ConversationRequests.AnswerAsync(client, ConversationRequests.Send(pair.AccessToken, conversation, "two"));
        var assistant = answer.GetProperty("assistant_message").GetProperty("id").GetGuid();
        await ConversationRequests.AnswerAsync(client, ConversationRequests.Regenerate(pair.AccessToken, conversation, assistant));
        var stored = await RowsOfAsync(system.Api, pair.UserId);

        var refused = new[]
        {
            await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "four")), Ct),
            await client.SendAsync(ChatTests.Json(ConversationRequests.Send(pair.AccessToken, conversation, "five")), Ct),
            await client.SendAsync(ChatTests.Json(ConversationRequests.Regenerate(pair.AccessToken, conversation, assistant)), Ct),
            await OpenStreamAsync(client, ConversationRequests.Send(pair.AccessToken, conversation, "six")),
        };

        foreach (var response in refused)
        {
            var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.TooManyRequests, "rate_limited")).RootElement;
            Assert.Equal(TimeSpan.FromMinutes(1), response.Headers.RetryAfter?.Delta);
            Assert.Equal(60, problem.GetProperty("retry_after_seconds").GetInt32());
        }

        // Two exchanges and a second answer: 5 messages, 3 turns, and not one more after the refusals.
        Assert.Equal((5L, 3L), stored);
        Assert.Equal(stored, await RowsOfAsync(system.Api, pair.UserId));
        Assert.Equal(2, (await ChatTests.HistoryAsync(client, pair.AccessToken, 10)).Count);

        // The allowance is each user's own.
        await ConversationRequests.AnswerAsync(client, SseReader.Send(other.AccessToken, "mine"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task StreamsOverTheOpenLimitAreRefusedAndAClosedStreamFreesItsSlotAtOnce(StoreProvider provider)
    {
        var model = new GatedChatClient();
        var api = await OnAsync(new ApiFactory()
            .WithSetting("Chat:MaxOpenStreamsPerUser", "2")
            .WithSetting("Chat:RateLimits:MessagesPerMinute", "3")
            .WithServices(s => s.UseModel(model)), provider);
        await using var system = RunningSystem.Start(api);
        try
        {
            await HoldTwoStreamsThenCloseOneAsync(system, model);
        }
        finally
        {
            // Whatever failed, the held turns end before the system stops.
            model.Open();
        }
    }

    private static async Task HoldTwoStreamsThenCloseOneAsync(RunningSystem system, GatedChatClient model)
    {
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var conversation = await ConversationRequests.CreateAsync(client, pair.AccessToken);

        // Two open streams: a streamed message, held at the model, and a second follower of its turn.
        var (first, firstReader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "hold on"));
        var started = (await firstReader.NextAsync(Ct))!;
        Assert.Equal("turn.started", started.Event);
        var turnId = started.Data.GetProperty("turn_id").GetGuid();
        var (second, _) = await SseReader.OpenAsync(client, SseReader.Resume(pair.AccessToken, turnId, null));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        // A third of either kind is refused; the refused message stores nothing.
        var refusedFollow = await OpenStreamAsync(client, SseReader.Resume(pair.AccessToken, turnId, null));
        var refusedSend = await OpenStreamAsync(client, ConversationRequests.Send(pair.AccessToken, conversation, "and this"));
        foreach (var response in new[] { refusedFollow, refusedSend })
        {
            var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.TooManyRequests, "too_many_streams")).RootElement;
            Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
            Assert.Equal(5, problem.GetProperty("retry_after_seconds").GetInt32());
        }

        Assert.Equal(0, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM messages WHERE conversation_id = @conversation", new { conversation }));

        // A JSON answer is no stream: it goes through (and waits at the model like the first turn).
        var json = client.SendAsync(ChatTests.Json(ConversationRequests.Send(pair.AccessToken, conversation, "no stream")), Ct);
        await model.WaitUntilHeldAsync(2);

        // Closing the second stream gives its slot back: a new follower gets in, polled with a deadline.
        second.Dispose();
        var reopened = await ChatTests.WaitForAsync(async () =>
        {
            var response = await OpenStreamAsync(client, SseReader.Resume(pair.AccessToken, turnId, null));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return response;
            }

            response.Dispose();
            return null;
        }, TimeSpan.FromSeconds(10));

        model.Open();
        var events = await firstReader.ReadAllAsync();
        Assert.Equal("turn.completed", events[^1].Event);
        Assert.Equal(HttpStatusCode.OK, (await json).StatusCode);
        reopened.Dispose();
        first.Dispose();

        // The stream limit is checked first: the refused streamed message spent none of the 3 messages a minute.
        await ConversationRequests.AnswerAsync(client, ConversationRequests.Send(pair.AccessToken, conversation, "third message"));
    }

    /// <summary>Asks for an event stream and returns once the headers are in, the body unread (a refusal is then read as a problem).</summary>
    private static Task<HttpResponseMessage> OpenStreamAsync(HttpClient client, HttpRequestMessage request)
    {
        request.Headers.Accept.ParseAdd("text/event-stream");
        return client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    private static async Task<(long Messages, long Turns)> RowsOfAsync(ApiFactory api, Guid userId) => (
        await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages WHERE user_id = @userId", new { userId }),
        await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns WHERE user_id = @userId", new { userId }));

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
