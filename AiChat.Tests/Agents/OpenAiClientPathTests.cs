using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Agents;

/// <summary>The built-in runtime over a real OpenAI-compatible endpoint (a contract fake): streaming, tools, usage, failures.</summary>
[Trait("Category", "Agents")]
public sealed class OpenAiClientPathTests : IAsyncLifetime
{
    private FakeOpenAi _llm = null!;
    private ApiFactory _api = null!;
    private TokenPair _user = null!;

    public async ValueTask InitializeAsync()
    {
        _llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-test-" + Guid.NewGuid().ToString("N")));
        _api = new ApiFactory()
            .WithSetting("Llm:Endpoint", _llm.BaseUrl.ToString())
            .WithSetting("Llm:ApiKey", _llm.ApiKey)
            .WithSetting("Llm:Model", "gpt-4o-mini")
            .WithSetting("Llm:MaxOutputTokens", "300");
        _user = await _api.CreateClient().RegisterAsync(name: null);
    }

    public async ValueTask DisposeAsync()
    {
        await _api.DisposeAsync();
        await _llm.DisposeAsync();
    }

    [Fact]
    public async Task StreamedTextArrivesInChunksWithTheFinalUsage()
    {
        _llm.Enqueue(FakeReply.Text("Hello Ana, nice to meet you!", promptTokens: 321, completionTokens: 9, chunkSize: 4));

        var events = await _api.RunTurnAsync(_user.UserId, "hi");

        Assert.True(events.OfType<AgentEvent.MessageDelta>().Count() > 3);
        Assert.Equal("Hello Ana, nice to meet you!", string.Concat(events.OfType<AgentEvent.MessageDelta>().Select(d => d.Text)));
        Assert.Equal("Hello Ana, nice to meet you!", events.Answer());
        var usage = Assert.Single(events.OfType<AgentEvent.Usage>());
        Assert.Equal((321, 9), (usage.PromptTokens, usage.CompletionTokens));
        Assert.StartsWith("gpt-4o-mini", usage.Model);

        var request = Assert.Single(_llm.Requests);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        Assert.Equal(300, request.MaxTokens);
        Assert.Equal($"Bearer {_llm.ApiKey}", request.Authorization);
        Assert.Contains(MemoryTools.Append, request.ToolNames);
        Assert.Contains("<memory_blocks>", request.Messages[0]!["content"]!.ToString());
    }

    [Fact]
    public async Task AToolCallIsExecutedAndItsResultSentBack()
    {
        _llm.Enqueue(FakeReply.ToolCall(MemoryTools.Append, """{"label":"human","content":"Name: Ana"}"""));
        _llm.Enqueue(FakeReply.Text("Nice to meet you, Ana."));

        var events = await _api.RunTurnAsync(_user.UserId, "My name is Ana");

        Assert.Equal(
            ["Usage", "ToolCall", "ToolResult", "MemoryUpdated", "Usage"],
            events.Where(e => e is not AgentEvent.MessageDelta and not AgentEvent.Completed).Select(e => e.GetType().Name));
        Assert.Equal("Name: Ana", await BuiltInAgentTests.HumanBlockAsync(_api, _user.UserId));
        Assert.Equal(2, _llm.Requests.Count);
        var second = _llm.Requests[1].Messages;
        Assert.Equal("tool", second[^1]!["role"]!.ToString());
        Assert.Contains("Name: Ana", second[^1]!["content"]!.ToString());
        Assert.Equal("Nice to meet you, Ana.", events.Answer());
    }

    [Fact]
    public async Task AnErrorMidStreamFailsTheTurnAfterWhatArrived()
    {
        _llm.Enqueue(FakeReply.ErrorMidStream("Let me think about"));

        var events = await _api.RunTurnAsync(_user.UserId, "hi");

        Assert.NotEmpty(events.OfType<AgentEvent.MessageDelta>());
        var failed = Assert.IsType<AgentEvent.Failed>(events[^1]);
        Assert.Equal(LlmErrors.ProtocolError, failed.Code);
        Assert.DoesNotContain(events, e => e is AgentEvent.Completed);
    }

    [Fact]
    public async Task AStreamCutOffWithoutAFinishReasonFailsTheTurn()
    {
        _llm.Enqueue(FakeReply.ErrorMidStream("Half an ans", abortConnection: false));

        var events = await _api.RunTurnAsync(_user.UserId, "hi");

        Assert.Equal(LlmErrors.ProtocolError, Assert.IsType<AgentEvent.Failed>(events[^1]).Code);
    }

    [Fact]
    public async Task AMalformedChunkFailsTheTurn()
    {
        _llm.Enqueue(FakeReply.Malformed("Hello"));

        var events = await _api.RunTurnAsync(_user.UserId, "hi");

        Assert.Equal(LlmErrors.ProtocolError, Assert.IsType<AgentEvent.Failed>(events[^1]).Code);
    }

    [Theory]
    [InlineData(429, "rate_limit_exceeded", LlmErrors.RateLimited)]
    [InlineData(400, "invalid_request_error", LlmErrors.Rejected)]
    [InlineData(500, "server_error", LlmErrors.Failed)]
    public async Task AnEndpointErrorFailsTheTurnWithACodeAndNoOfflineText(int status, string type, string code)
    {
        _llm.Enqueue(FakeReply.Error(status, type, "nope"));

        var events = await _api.RunTurnAsync(_user.UserId, "hi");

        var failed = Assert.IsType<AgentEvent.Failed>(Assert.Single(events));
        Assert.Equal(code, failed.Code);
        Assert.DoesNotContain("offline", failed.Detail, StringComparison.OrdinalIgnoreCase);
        Assert.Single(_llm.Requests); // a started call is never retried
    }

    [Fact]
    public async Task AnUnreachableEndpointFailsTheTurnRatherThanFallingBackToTheOfflineModel()
    {
        var port = _llm.BaseUrl.Port;
        await _llm.DisposeAsync();
        await using var api = new ApiFactory().WithSetting("Llm:Endpoint", $"http://127.0.0.1:{port}/v1").WithSetting("Llm:ApiKey", "sk-unused");
        var pair = await api.CreateClient().RegisterAsync();

        var events = await api.RunTurnAsync(pair.UserId, "hi");

        Assert.Equal(LlmErrors.Unreachable, Assert.IsType<AgentEvent.Failed>(Assert.Single(events)).Code);
    }
}
