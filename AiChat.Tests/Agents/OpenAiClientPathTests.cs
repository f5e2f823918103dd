using System.Net;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Agents;

/// <summary>
/// The built-in runtime over a real OpenAI-compatible endpoint (a contract fake), through the chat endpoints: streaming,
/// tools, usage, and every failure as the client gets it (a <c>turn.failed</c> event or a JSON problem), on both stores.
/// </summary>
[Trait("Category", "Agents")]
public sealed class OpenAiClientPathTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<StoreProvider, int, string, string, int> EndpointErrors()
    {
        var data = new TheoryData<StoreProvider, int, string, string, int>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            data.Add(provider, 429, "rate_limit_exceeded", LlmErrors.RateLimited, 429);
            data.Add(provider, 400, "invalid_request_error", LlmErrors.Rejected, 502);
            data.Add(provider, 500, "server_error", LlmErrors.Failed, 502);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task StreamedTextArrivesAsDeltasWithTheFinalUsage(StoreProvider provider)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.Text("Hello Ana, nice to meet you!", promptTokens: 321, completionTokens: 9, chunkSize: 4));

        var events = await rig.StreamAsync("hi");

        Assert.Equal("message.delta", events[1].Event); // the text streams before the usage, however the deltas are coalesced
        Assert.Equal("Hello Ana, nice to meet you!", events.Streamed());
        Assert.Equal("Hello Ana, nice to meet you!", events.Answer());
        var usage = Assert.Single(events.Named("usage"));
        Assert.Equal((321, 9), (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32()));
        Assert.StartsWith("gpt-4o-mini", usage.GetProperty("model").GetString());

        var request = Assert.Single(rig.Llm.Requests);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        Assert.Equal(300, request.MaxTokens);
        Assert.Equal($"Bearer {rig.Llm.ApiKey}", request.Authorization);
        Assert.Contains(MemoryTools.Append, request.ToolNames);
        Assert.Contains("<memory_blocks>", request.Messages[0]!["content"]!.ToString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AToolCallIsExecutedAndItsResultSentBack(StoreProvider provider)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.ToolCall(MemoryTools.Append, """{"label":"human","content":"Name: Ana"}"""));
        rig.Llm.Enqueue(FakeReply.Text("Nice to meet you, Ana."));

        var events = await rig.StreamAsync("My name is Ana");

        Assert.Equal(["turn.started", "usage", "tool.call", "tool.result", "memory.updated", "usage", "turn.completed"], events.Steps());
        Assert.Equal("Name: Ana", await BuiltInAgentTests.HumanBlockAsync(rig.Api, rig.User.UserId));
        Assert.Equal(2, rig.Llm.Requests.Count);
        var second = rig.Llm.Requests[1].Messages;
        Assert.Equal("tool", second[^1]!["role"]!.ToString());
        Assert.Contains("Name: Ana", second[^1]!["content"]!.ToString());
        Assert.Equal("Nice to meet you, Ana.", events.Answer());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnErrorMidStreamFailsTheTurnAfterWhatArrivedAndKeepsTheUsersMessage(StoreProvider provider)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.ErrorMidStream("Let me think about"));

        var events = await rig.StreamAsync("hi");

        Assert.StartsWith("Let me think about", events.Streamed());
        Assert.Equal(LlmErrors.ProtocolError, events.Failure().GetProperty("code").GetString());
        Assert.Equal(502, events.Failure().GetProperty("status").GetInt32());
        var messages = await Conversations.MessagesAsync(rig.Client, rig.User.AccessToken, rig.ConversationId);
        Assert.Equal([("assistant", "failed"), ("user", "complete")], messages.Select(m => (m.GetProperty("role").GetString(), m.GetProperty("status").GetString())));
        Assert.Equal("hi", messages[1].GetProperty("content").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AStreamCutOffWithoutAFinishReasonFailsTheTurn(StoreProvider provider)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.ErrorMidStream("Half an ans", abortConnection: false));

        var events = await rig.StreamAsync("hi");

        Assert.Equal(LlmErrors.ProtocolError, events.Failure().GetProperty("code").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMalformedChunkFailsTheTurnAsAProblemOfTheJsonAnswer(StoreProvider provider)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.Malformed("Hello"));

        var response = await Conversations.SendAsync(rig.Client, rig.User.AccessToken, rig.ConversationId, "hi");

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.BadGateway, LlmErrors.ProtocolError);
    }

    [Theory]
    [MemberData(nameof(EndpointErrors))]
    public async Task AnEndpointErrorFailsTheTurnWithACodeAndNoOfflineText(StoreProvider provider, int status, string type, string code, int answered)
    {
        await using var rig = await Rig.StartAsync(provider, postgres);
        rig.Llm.Enqueue(FakeReply.Error(status, type, "nope"));
        rig.Llm.Enqueue(FakeReply.Error(status, type, "nope"));

        var events = await rig.StreamAsync("hi");
        var json = await Conversations.SendAsync(rig.Client, rig.User.AccessToken, rig.ConversationId, "hi again");

        Assert.Equal(["turn.started", "turn.failed"], events.Steps());
        var failed = events.Failure();
        Assert.Equal((code, answered), (failed.GetProperty("code").GetString(), failed.GetProperty("status").GetInt32()));
        Assert.DoesNotContain("offline", failed.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(json, (HttpStatusCode)answered, code)).RootElement;
        Assert.DoesNotContain("offline", problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(2, rig.Llm.Requests.Count); // one per turn: a started call is never retried
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnUnreachableEndpointFailsTheTurnRatherThanFallingBackToTheOfflineModel(StoreProvider provider)
    {
        var port = Loopback.FreePort();
        await using var api = await new ApiFactory().WithSetting("Llm:Endpoint", $"http://127.0.0.1:{port}/v1").WithSetting("Llm:ApiKey", "sk-unused").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var events = await AgentTurns.StreamAsync(client, pair.AccessToken, "hi");

        Assert.Equal(["turn.started", "turn.failed"], events.Steps());
        Assert.Equal(LlmErrors.Unreachable, events.Failure().GetProperty("code").GetString());
        Assert.DoesNotContain(events, e => e.Event == "message.delta");
    }

    /// <summary>The fake endpoint, the API configured with it, a user, and a titled conversation (so no title call follows a turn).</summary>
    private sealed record Rig(FakeOpenAi Llm, ApiFactory Api, HttpClient Client, TokenPair User, Guid ConversationId) : IAsyncDisposable
    {
        public static async Task<Rig> StartAsync(StoreProvider provider, PostgresServer postgres)
        {
            var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-test-" + Guid.NewGuid().ToString("N")));
            var api = await new ApiFactory()
                .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
                .WithSetting("Llm:ApiKey", llm.ApiKey)
                .WithSetting("Llm:Model", "gpt-4o-mini")
                .WithSetting("Llm:MaxOutputTokens", "300")
                .OnAsync(provider, postgres);
            var client = api.CreateClient();
            var user = await client.RegisterAsync(name: null);
            var conversationId = await Conversations.CreateIdAsync(client, user.AccessToken, title: "Path");
            return new Rig(llm, api, client, user, conversationId);
        }

        public Task<List<SseEvent>> StreamAsync(string content) => AgentTurns.StreamAsync(Client, User.AccessToken, content, ConversationId);

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Api.DisposeAsync();
            await Llm.DisposeAsync();
        }
    }
}
