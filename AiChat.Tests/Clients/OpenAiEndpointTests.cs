using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Clients;

/// <summary>
/// <c>/v1/chat/completions</c> through the gateway with a personal API key, on SQLite and Postgres, where the SDK test
/// does not reach: which conversation a request is in (named by header or metadata, kept apart; a retried request stores
/// nothing twice), and bad requests answered as OpenAI error objects that change nothing.
/// </summary>
[Trait("Category", "Clients")]
public sealed class OpenAiEndpointTests(PostgresServer postgres)
{
    private const string Model = "aichat-offline";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ANamedConversationKeepsItsChatApartAndARetriedRequestIsStoredOnce(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken);
        var work = await ConversationRequests.CreateAsync(client, pair.AccessToken);
        var home = await ConversationRequests.CreateAsync(client, pair.AccessToken);

        // The same words in two chats, named one by the header and one by metadata: each lands in its own conversation.
        var toWork = await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "user", content = "hello" } } }, work);
        var toHome = await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "user", content = "hello" } }, metadata = new { conversation_id = home.ToString() } });
        Assert.Equal(work.ToString(), Header(toWork));
        Assert.Equal(home.ToString(), Header(toHome));

        // A client that sends only its newest message in a named conversation: a repeat is a new message.
        await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "user", content = "hello" } } }, work);
        Assert.Equal(4, (await OpenAiSdkTests.HistoryAsync(client, pair.AccessToken, work)).Count);
        Assert.Equal(2, (await OpenAiSdkTests.HistoryAsync(client, pair.AccessToken, home)).Count);

        // A stateless client retrying the same request (same history, same message) gets the same answer, stored once.
        var start = await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "user", content = "hello" } } });
        var stateless = Guid.Parse(Header(start)!);
        Assert.NotEqual(work, stateless);
        Assert.NotEqual(home, stateless);
        var answer = (await Body(start)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        var next = new { model = Model, messages = new object[] { new { role = "user", content = "hello" }, new { role = "assistant", content = answer }, new { role = "user", content = "my name is Ana" } } };
        var once = await CompleteAsync(client, key.Key, next);
        var twice = await CompleteAsync(client, key.Key, next);
        Assert.Equal((await Body(once)).GetProperty("id").GetString(), (await Body(twice)).GetProperty("id").GetString());
        Assert.Equal(stateless.ToString(), Header(twice));
        Assert.Equal(
            ["user: hello", $"assistant: {answer}", "user: my name is Ana", $"assistant: {(await Body(once)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()}"],
            await OpenAiSdkTests.HistoryAsync(client, pair.AccessToken, stateless));

        // The same history with another last message is a branch: a conversation of its own, the first one untouched.
        var branch = await CompleteAsync(client, key.Key, new { model = Model, messages = new object[] { new { role = "user", content = "hello" }, new { role = "assistant", content = answer }, new { role = "user", content = "I like tea" } } });
        Assert.NotEqual(stateless.ToString(), Header(branch));
        Assert.Equal(4, (await OpenAiSdkTests.HistoryAsync(client, pair.AccessToken, stateless)).Count);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task BadRequestsAreOpenAiErrorsAndStoreNothing(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken);
        var hello = new[] { new { role = "user", content = "hello" } };

        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { model = "gpt-nope", messages = hello }), HttpStatusCode.NotFound, "model_not_found", "invalid_request_error");
        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { messages = hello }), HttpStatusCode.BadRequest, "validation_failed", "invalid_request_error");
        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { model = Model, messages = Array.Empty<object>() }), HttpStatusCode.BadRequest, "validation_failed", "invalid_request_error");
        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "assistant", content = "hi" } } }), HttpStatusCode.BadRequest, "validation_failed", "invalid_request_error");
        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "wizard", content = "hi" } } }), HttpStatusCode.BadRequest, "validation_failed", "invalid_request_error");
        await AssertErrorAsync(await CompleteAsync(client, key.Key, new { model = Model, messages = hello }, Guid.NewGuid()), HttpStatusCode.NotFound, "not_found", "invalid_request_error");
        using (var malformed = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent("{\"model\":", System.Text.Encoding.UTF8, "application/json") })
        {
            malformed.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key.Key);
            await AssertErrorAsync(await client.SendAsync(malformed, Ct), HttpStatusCode.BadRequest, "malformed_json", "invalid_request_error");
        }

        await AssertErrorAsync(await CompleteAsync(client, "aik_" + new string('x', 43), new { model = Model, messages = hello }), HttpStatusCode.Unauthorized, "unauthorized", "authentication_error");

        Assert.Equal(0, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM messages WHERE user_id = @userId", new { userId = pair.UserId }));
        Assert.Equal(0, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM turns WHERE user_id = @userId", new { userId = pair.UserId }));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ASecondMessageWhileTheConversationAnswersIsAConflictAndAStreamWaitsForItsFirstWord(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken);
        var conversation = await ConversationRequests.CreateAsync(client, pair.AccessToken);
        try
        {
            var streamed = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = Model, stream = true, messages = new[] { new { role = "user", content = "first" } } }),
            };
            streamed.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key.Key);
            streamed.Headers.Add("X-AiChat-Conversation", conversation.ToString());
            var first = client.SendAsync(streamed, HttpCompletionOption.ResponseHeadersRead, Ct);
            await model.WaitUntilHeldAsync(1);

            // Nothing is sent before the turn's first word (an early refusal could still be an HTTP error).
            Assert.False(first.IsCompleted);
            await AssertErrorAsync(
                await CompleteAsync(client, key.Key, new { model = Model, messages = new[] { new { role = "user", content = "second" } } }, conversation),
                HttpStatusCode.Conflict, "conversation_busy", "invalid_request_error");
            Assert.Equal(1, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM turns WHERE user_id = @userId", new { userId = pair.UserId }));

            model.Open();
            var response = await first;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            var body = await response.Content.ReadAsStringAsync(Ct);
            var chunks = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Trim()).ToList();
            Assert.Equal("data: [DONE]", chunks[^1]);
            var deltas = chunks[..^1].Select(c => JsonDocument.Parse(c["data: ".Length..]).RootElement.GetProperty("choices")[0]).ToList();
            Assert.Equal("assistant", deltas[0].GetProperty("delta").GetProperty("role").GetString());
            Assert.Equal(model.Answer, string.Concat(deltas.Select(d => d.GetProperty("delta").TryGetProperty("content", out var c) ? c.GetString() : "")));
            Assert.Equal("stop", deltas[^1].GetProperty("finish_reason").GetString());
        }
        finally
        {
            model.Open();
        }
    }

    private static async Task<HttpResponseMessage> CompleteAsync(HttpClient client, string key, object body, Guid? conversation = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (conversation is not null)
        {
            request.Headers.Add("X-AiChat-Conversation", conversation.ToString());
        }

        var response = await client.SendAsync(request, Ct);
        return response;
    }

    private static string? Header(HttpResponseMessage response) =>
        response.Headers.TryGetValues("X-AiChat-Conversation", out var values) ? values.Single() : null;

    private static async Task<JsonElement> Body(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement;
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code, string type)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {text}");
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("param", out _));
    }

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
