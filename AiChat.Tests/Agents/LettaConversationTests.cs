using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Agents;

/// <summary>
/// Conversations with <c>Agents:Runtime=Letta</c>, through the public API against the Letta contract fake: each AiChat
/// conversation is a Letta conversation of the user's agent, the default one is the agent-direct history.
/// </summary>
[Trait("Category", "Agents")]
public sealed class LettaConversationTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ANewConversationIsALettaConversationOfTheUsersAgentAndItsMessagesGoThere(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync();
        var agent = Assert.Single(rig.Letta.Agents);

        var id = await CreateAsync(rig, pair, new { title = "Trip" });
        var inConversation = await SendAsync(rig, pair, id, "Plan the trip");
        var single = await rig.Client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Hello")), Ct);

        Assert.Equal(HttpStatusCode.OK, inConversation.StatusCode);
        Assert.Equal(HttpStatusCode.OK, single.StatusCode);
        var conversation = Assert.Single(rig.Letta.Conversations);
        Assert.Equal((agent.Id, (string?)null), (conversation.AgentId, conversation.Model));
        Assert.Equal([("user", "Plan the trip"), ("assistant", ChatCompletionsResponder.DefaultText)], conversation.Messages);
        Assert.Equal([("user", "Hello"), ("assistant", ChatCompletionsResponder.DefaultText)], rig.Letta.Agent(agent.Id)!.Messages);
        var sends = rig.Letta.Requests.Where(r => r.Method == "POST" && r.Path.EndsWith("/messages", StringComparison.Ordinal)).Select(r => r.Path);
        Assert.Equal([$"/v1/conversations/{conversation.Id}/messages", $"/v1/agents/{agent.Id}/messages"], sends);
        var history = await (await rig.Client.GetWithTokenAsync($"/api/v1/conversations/{id}/messages", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(["assistant", "user"], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TwoConversationsAnswerAtTheSameTime(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync();
        var first = await CreateAsync(rig, pair, new { });
        var second = await CreateAsync(rig, pair, new { });
        rig.Llm.Hold();

        var answers = new[] { SendAsync(rig, pair, first, "one"), SendAsync(rig, pair, second, "two") };
        // Both turns are inside Letta, waiting on the model, at once.
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 2 ? (object)true : null));
        rig.Llm.Release();

        Assert.All(await Task.WhenAll(answers), answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Assert.Equal([1, 1], rig.Letta.Conversations.Select(c => c.Messages.Count(m => m.Role == "user")));
        Assert.Equal(["completed", "completed"], rig.Letta.Runs.Select(r => r.Status));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingAConversationDeletesItsLettaConversationAndOneLettaLostAlreadyStillDeletes(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync();
        var kept = await CreateAsync(rig, pair, new { });
        var deleted = await CreateAsync(rig, pair, new { });
        var lost = await CreateAsync(rig, pair, new { });
        var lettaIds = rig.Letta.Conversations.Select(c => c.Id).ToList();
        using (var http = Fakes.SelfChecks.LettaConversationFakeSelfCheckTests.Http(rig.Letta))
        {
            Assert.Equal(HttpStatusCode.OK, (await http.DeleteAsync($"v1/conversations/{lettaIds[2]}", Ct)).StatusCode);
        }

        var first = await rig.Client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/conversations/{deleted}", pair.AccessToken);
        var second = await rig.Client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/conversations/{lost}", pair.AccessToken);

        Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, second.StatusCode);
        Assert.Equal([false, true, true], rig.Letta.Conversations.Select(c => c.Deleted));
        Assert.Equal(HttpStatusCode.OK, (await rig.Client.GetWithTokenAsync($"/api/v1/conversations/{kept}", pair.AccessToken)).StatusCode);
        Assert.Equal(2, await BuiltInAuthTests.CountAsync(rig.Api, "SELECT COUNT(*) FROM conversations")); // the default one and the kept one
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AFactTheAgentStoresInOneConversationIsInTheNextTurnOfAnotherThatWasOpenAlready(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync(name: null);
        var told = await CreateAsync(rig, pair, new { });
        var asked = await CreateAsync(rig, pair, new { });
        rig.Llm.ReplyWithToolCall("core_memory_append", """{"label":"human","content":"Likes green tea"}""", prompt: 100, completion: 10);
        rig.Llm.Reply("Noted.", prompt: 120, completion: 2);
        rig.Llm.Reply("You like green tea.", prompt: 130, completion: 5);

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(rig, pair, told, "I like green tea")).StatusCode);
        var answer = await SendAsync(rig, pair, asked, "What do I like?");

        var result = await answer.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal("You like green tea.", result.GetProperty("assistant_message").GetProperty("content").GetString());
        var call = rig.Llm.Calls[^1].Body["messages"]!.AsArray();
        Assert.Contains("Likes green tea", call[0]!["content"]!.GetValue<string>(), StringComparison.Ordinal); // memory is the agent's
        Assert.Equal(["system", "user"], call.Select(m => m!["role"]!.GetValue<string>())); // context is the conversation's
        Assert.Equal("Likes green tea", (await BlockAsync(rig, pair, "human")));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task CancellingATurnInAConversationCancelsItsLettaRunAndTheNextMessageIsAnswered(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync();
        var id = await CreateAsync(rig, pair, new { });
        rig.Llm.Hold();
        var (_, reader) = await SseReader.OpenAsync(rig.Client, Request(pair, id, "a long one please"));
        var started = (await reader.NextAsync(Ct))!;
        await ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 1 ? (object)true : null));

        var cancel = await rig.Client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{started.Data.GetProperty("turn_id").GetGuid()}/cancel", pair.AccessToken);
        var rest = await reader.ReadAllAsync();
        rig.Llm.Release();
        var next = await SendAsync(rig, pair, id, "a short one then");

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.Equal(("turn.failed", "cancelled"), (rest[^1].Event, rest[^1].Data.GetProperty("code").GetString()));
        Assert.Equal(["cancelled", "completed"], rig.Letta.Runs.Select(r => r.Status));
        var conversationId = Assert.Single(rig.Letta.Conversations).Id;
        var calls = rig.Letta.Requests.Where(r => r.Method == "POST" && r.Path.StartsWith($"/v1/conversations/{conversationId}/", StringComparison.Ordinal)).Select(r => r.Path[(r.Path.LastIndexOf('/') + 1)..]);
        Assert.Equal(["recompile", "messages", "cancel", "recompile", "messages"], calls);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AConversationsModelIsLettasAndAChangedModelAppliesFromItsNextTurn(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider, api => api
            .WithSetting("Llm:Models:0:Id", "gpt-4o-mini")
            .WithSetting("Llm:Models:0:ContextWindow", "128000")
            .WithSetting("Llm:Models:0:MaxOutputTokens", "1000")
            .WithSetting("Llm:Models:0:Default", "true")
            .WithSetting("Llm:Models:1:Id", "house-model")
            .WithSetting("Llm:Models:1:ContextWindow", "32000")
            .WithSetting("Llm:Models:1:MaxOutputTokens", "2000")
            .WithSetting("Llm:Models:1:InputPerMillionUsd", "1.25")
            .WithSetting("Llm:Models:1:OutputPerMillionUsd", "5"));
        rig.Llm.Models.Add("house-model");
        var pair = await rig.Client.RegisterAsync();
        var id = await CreateAsync(rig, pair, new { model = "house-model" });

        var before = await SendAsync(rig, pair, id, "hi");
        var patched = await rig.Client.SendWithTokenAsync(HttpMethod.Patch, $"/api/v1/conversations/{id}", pair.AccessToken, new { model = "gpt-4o-mini" });
        var after = await SendAsync(rig, pair, id, "hi again");

        Assert.Equal($"aichat-{pair.UserId:N}/house-model", Assert.Single(rig.Letta.Conversations).Model);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], new[] { before.StatusCode, patched.StatusCode, after.StatusCode });
        Assert.Equal(["house-model", "gpt-4o-mini"], rig.Llm.Calls.Select(c => c.Body["model"]!.GetValue<string>()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhenLettaIsDownANewConversationIsUnavailableAndNothingIsStored(StoreProvider provider)
    {
        await using var rig = await StartAsync(provider);
        var pair = await rig.Client.RegisterAsync();
        rig.Letta.FailNextRequests(1);

        var response = await rig.Client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/conversations", pair.AccessToken, new { title = "Never" });

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "agent_unavailable");
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(rig.Api, "SELECT COUNT(*) FROM conversations")); // the default one
        Assert.Empty(rig.Letta.Conversations);
    }

    private async Task<Rig> StartAsync(StoreProvider provider, Func<ApiFactory, ApiFactory>? configure = null)
    {
        var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        var llm = await ChatCompletionsResponder.StartAsync();
        var api = new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", letta.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", llm.BaseUrl);
        api = configure?.Invoke(api) ?? api;
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        return new Rig(letta, llm, api, api.CreateClient());
    }

    private static async Task<Guid> CreateAsync(Rig rig, TokenPair pair, object body)
    {
        var response = await rig.Client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/conversations", pair.AccessToken, body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
    }

    private static Task<HttpResponseMessage> SendAsync(Rig rig, TokenPair pair, Guid conversationId, string content) =>
        rig.Client.SendAsync(ChatTests.Json(Request(pair, conversationId, content)), Ct);

    private static HttpRequestMessage Request(TokenPair pair, Guid conversationId, string content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/conversations/{conversationId}/messages") { Content = JsonContent.Create(new { content }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", pair.AccessToken);
        return request;
    }

    private static async Task<string?> BlockAsync(Rig rig, TokenPair pair, string label) =>
        (await (await rig.Client.GetWithTokenAsync("/api/v1/agent/memory", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct))
            .GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == label).GetProperty("value").GetString();

    private sealed record Rig(FakeLetta Letta, ChatCompletionsResponder Llm, ApiFactory Api, HttpClient Client) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Api.DisposeAsync();
            await Letta.DisposeAsync();
            await Llm.DisposeAsync();
        }
    }
}
