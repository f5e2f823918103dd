using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Api.Agents.Letta;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Agents;

/// <summary>
/// Unit level: how the Letta runtime maps each of its calls onto Letta's V1 API (the contract fake records every request),
/// with no API around it. Turns as a client sees them go through the chat endpoint: <see cref="LettaThroughApiTests"/> and
/// <see cref="LettaConversationTests"/>.
/// </summary>
[Trait("Category", "Letta")]
public sealed class LettaRuntimeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CreatingAnAgentRegistersAPerUserProviderAndAnAgentWithTheDefaultBlocksAndTag()
    {
        await using var rig = await LettaRig.StartAsync();
        var userId = Guid.NewGuid();

        var agentId = await rig.Runtime.CreateAsync(rig.Record(userId, null), LettaRig.Defaults, Ct);

        var provider = Assert.Single(rig.Letta.Providers);
        Assert.Equal($"aichat-{userId:N}", provider.Name);
        Assert.Equal("openai", provider.ProviderType);
        Assert.Equal(rig.Keys.KeyFor(userId), provider.ApiKey);
        Assert.Equal(rig.Options.LlmBaseUrl, provider.BaseUrl);

        var agent = Assert.Single(rig.Letta.Agents);
        Assert.Equal(agent.Id, agentId);
        Assert.Equal($"user-{userId:N}", agent.Name);
        Assert.Equal($"aichat-{userId:N}/gpt-4o-mini", agent.Model);
        Assert.Equal($"aichat-{userId:N}/text-embedding-3-small", agent.Embedding);
        Assert.Equal([$"aichat-user:{userId}"], agent.Tags);
        Assert.True(agent.IncludeBaseTools);
        Assert.Equal(
            LettaRig.Defaults.Blocks.Select(b => new FakeLetta.Block(b.Label, b.Value, b.Limit, b.Description)),
            agent.Blocks);
        Assert.Equal([$"Bearer {rig.Keys.KeyFor(userId)}"], rig.Llm.ModelListings);
    }

    [Fact]
    public async Task AModelTheMeteredEndpointDoesNotOfferFailsTheCreationAndLeavesNoProviderBehind()
    {
        await using var rig = await LettaRig.StartAsync(options => options.Model = "gpt-5-unpriced");

        var error = await Assert.ThrowsAsync<AgentRuntimeUnavailableException>(() => rig.Runtime.CreateAsync(rig.Record(Guid.NewGuid(), null), LettaRig.Defaults, Ct));

        Assert.Contains("gpt-5-unpriced", error.Message, StringComparison.Ordinal);
        Assert.Empty(rig.Letta.Providers);
        Assert.Empty(rig.Letta.Agents);
    }

    [Fact]
    public async Task CreatingAgainForTheSameUserReusesTheProvider()
    {
        await using var rig = await LettaRig.StartAsync();
        var userId = Guid.NewGuid();

        await rig.Runtime.CreateAsync(rig.Record(userId, null), LettaRig.Defaults, Ct);
        await rig.Runtime.CreateAsync(rig.Record(userId, null), LettaRig.Defaults, Ct);

        Assert.Single(rig.Letta.Providers);
        Assert.Equal(2, rig.Letta.Agents.Count);
    }

    [Fact]
    public async Task AFailedAgentCreationLeavesNoProviderBehind()
    {
        await using var rig = await LettaRig.StartAsync();
        var tooLong = new AgentDefaults([new MemoryBlock("human", new string('x', 51), 50, null, DateTimeOffset.UtcNow)], "gpt-4o-mini");

        await Assert.ThrowsAsync<AgentRuntimeUnavailableException>(() => rig.Runtime.CreateAsync(rig.Record(Guid.NewGuid(), null), tooLong, Ct));

        Assert.Empty(rig.Letta.Providers);
        Assert.Empty(rig.Letta.Agents);
    }

    [Fact]
    public async Task DeletingAnAgentRemovesItAndItsProviderAndAMissingAgentIsNoError()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        await rig.Runtime.DeleteAsync(agent, Ct);
        await rig.Runtime.DeleteAsync(agent, Ct);

        Assert.Empty(rig.Letta.Agents);
        Assert.Empty(rig.Letta.Providers);
    }

    [Fact]
    public async Task BlocksAreReadAndUpdatedTogether()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        var updated = await rig.Runtime.UpdateBlocksAsync(agent, [new BlockUpdate("human", "Name: Ana"), new BlockUpdate("persona", "Be brief.")], Ct);
        var read = await rig.Runtime.GetBlocksAsync(agent, Ct);

        Assert.Equal(["Name: Ana", "Be brief."], updated.OrderBy(b => b.Label == "persona").Select(b => b.Value));
        Assert.Equal(updated.Select(b => (b.Label, b.Value, b.Limit)), read.Select(b => (b.Label, b.Value, b.Limit)));
        Assert.Equal("Name: Ana", rig.Letta.Agent(agent.ExternalId!)!.Blocks.Single(b => b.Label == "human").Value);
        Assert.All(read, block => Assert.Equal(5000, block.Limit));
    }

    [Fact]
    public async Task AnUpdateWithOneBlockOverItsLimitAppliesNothing()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        var before = rig.Letta.Agent(agent.ExternalId!)!.Blocks;

        var error = await Assert.ThrowsAsync<MemoryLimitExceededException>(() => rig.Runtime.UpdateBlocksAsync(
            agent,
            [new BlockUpdate("human", "Name: Ana"), new BlockUpdate("persona", new string('p', 5012))],
            Ct));

        Assert.Equal(("persona", 5000, 5012), (error.Label, error.Limit, error.Requested));
        Assert.Equal(before, rig.Letta.Agent(agent.ExternalId!)!.Blocks);
        Assert.DoesNotContain(rig.Letta.Requests, r => r.Method == "PATCH");
    }

    [Fact]
    public async Task AnUpdateNamingAnUnknownBlockAppliesNothing()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        var error = await Assert.ThrowsAsync<UnknownBlockException>(() => rig.Runtime.UpdateBlocksAsync(
            agent,
            [new BlockUpdate("human", "Name: Ana"), new BlockUpdate("diary", "Dear diary")],
            Ct));

        Assert.Equal("diary", error.Label);
        Assert.Equal("", rig.Letta.Agent(agent.ExternalId!)!.Blocks.Single(b => b.Label == "human").Value);
    }

    [Fact]
    public async Task LettasOverTheLimitAnswerBecomesMemoryLimitExceeded()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        var error = await Assert.ThrowsAsync<MemoryLimitExceededException>(() =>
            rig.Client.UpdateBlockAsync(agent.ExternalId!, "human", new string('h', 5012), null, Ct));
        var unknown = await Assert.ThrowsAsync<UnknownBlockException>(() =>
            rig.Client.UpdateBlockAsync(agent.ExternalId!, "diary", "x", null, Ct));

        Assert.Equal(("human", 5000, 5012), (error.Label, error.Limit, error.Requested));
        Assert.Equal("diary", unknown.Label);
    }

    [Fact]
    public async Task ArchivalPassagesAreInsertedListedSearchedCountedAndDeleted()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        var tea = await rig.Runtime.InsertArchivalAsync(agent, "Ana likes green tea", Ct);
        await rig.Runtime.InsertArchivalAsync(agent, "Ana has a cat called Miso", Ct);
        var last = await rig.Runtime.InsertArchivalAsync(agent, "Ana drinks tea every morning", Ct);

        var all = await rig.Runtime.ListArchivalAsync(agent, null, 10, Ct);
        Assert.Equal([last.Id, all[1].Id, tea.Id], all.Select(p => p.Id));
        Assert.Equal("Ana likes green tea", tea.Content);
        var matching = await rig.Runtime.ListArchivalAsync(agent, "tea", 10, Ct);
        Assert.Equal([last.Id, tea.Id], matching.Select(p => p.Id));
        Assert.Single(await rig.Runtime.ListArchivalAsync(agent, null, 1, Ct));
        var found = await rig.Client.SearchPassagesAsync(agent.ExternalId!, "cat Miso", 5, Ct);
        Assert.Equal("Ana has a cat called Miso", Assert.Single(found).Content);
        Assert.Equal(3, await rig.Runtime.CountArchivalAsync(agent, Ct));

        Assert.True(await rig.Runtime.DeleteArchivalAsync(agent, tea.Id, Ct));
        Assert.False(await rig.Runtime.DeleteArchivalAsync(agent, tea.Id, Ct));
        Assert.Equal(2, await rig.Runtime.CountArchivalAsync(agent, Ct));
    }

    [Fact]
    public async Task APassageOfAnotherAgentCannotBeDeleted()
    {
        await using var rig = await LettaRig.StartAsync();
        var mine = await rig.CreateAgentAsync();
        var theirs = await rig.CreateAgentAsync();
        var passage = await rig.Runtime.InsertArchivalAsync(theirs, "Not yours", Ct);

        Assert.False(await rig.Runtime.DeleteArchivalAsync(mine, passage.Id, Ct));
        Assert.Equal(1, await rig.Runtime.CountArchivalAsync(theirs, Ct));
    }

    [Theory]
    [InlineData(ResetScope.Conversation)]
    [InlineData(ResetScope.Memory)]
    [InlineData(ResetScope.All)]
    public async Task ResetForgetsExactlyWhatItsScopeSays(ResetScope scope)
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        await rig.Runtime.UpdateBlocksAsync(agent, [new BlockUpdate("human", "Name: Ana"), new BlockUpdate("persona", "Be terse.")], Ct);
        await rig.Runtime.InsertArchivalAsync(agent, "Ana likes tea", Ct);
        await rig.Runtime.InsertArchivalAsync(agent, "Ana has a cat", Ct);
        await CollectAsync(rig.Runtime.RunTurnAsync(agent, new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));

        await rig.Runtime.ResetAsync(agent, scope, LettaRig.Defaults, Ct);

        var state = rig.Letta.Agent(agent.ExternalId!)!;
        var conversationGone = scope is ResetScope.Conversation or ResetScope.All;
        var memoryGone = scope is ResetScope.Memory or ResetScope.All;
        Assert.Equal(conversationGone ? 0 : 2, state.Messages.Count);
        Assert.Equal(memoryGone ? "" : "Name: Ana", state.Blocks.Single(b => b.Label == "human").Value);
        Assert.Equal(memoryGone ? LettaRig.Persona : "Be terse.", state.Blocks.Single(b => b.Label == "persona").Value);
        Assert.Equal(memoryGone ? 0 : 2, state.Passages.Count);
        Assert.Equal(memoryGone ? 0 : 2, await rig.Runtime.CountArchivalAsync(agent, Ct));
    }

    [Fact]
    public async Task TheContextReportsTokensWindowAndMessages()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        await CollectAsync(rig.Runtime.RunTurnAsync(agent, new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));

        var context = await rig.Runtime.GetContextAsync(agent, Ct);

        Assert.Equal(FakeLetta.ContextWindow, context.Window);
        Assert.InRange(context.Tokens, 1, context.Window);
        Assert.Equal(3, context.MessageCount);
    }

    [Fact]
    public async Task AReadThatMeetsAServerErrorIsTriedAgain()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        rig.Letta.FailNextRequests(2);

        var blocks = await rig.Runtime.GetBlocksAsync(agent, Ct);

        Assert.Equal(["human", "persona"], blocks.Select(b => b.Label));
        Assert.Equal(3, rig.Letta.Requests.Count(r => r.Method == "GET" && r.Path.EndsWith("/core-memory/blocks", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AWriteThatMeetsAServerErrorIsNeverTriedAgain()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        rig.Letta.FailNextRequests(1);
        await Assert.ThrowsAsync<AgentRuntimeUnavailableException>(() => rig.Runtime.InsertArchivalAsync(agent, "Ana likes tea", Ct));

        Assert.Single(rig.Letta.Requests, r => r.Method == "POST" && r.Path.EndsWith("/archival-memory", StringComparison.Ordinal));
        Assert.Empty(rig.Letta.Agent(agent.ExternalId!)!.Passages);
    }

    [Fact]
    public async Task ACancelledTurnThrowsOperationCanceled()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            CollectAsync(rig.Runtime.RunTurnAsync(agent, new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), cancelled.Token)));
    }

    [Fact]
    public async Task AConversationIsMadeForTheAgentOnTheModelBehindTheUsersProviderOrOnTheAgentsModel()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();

        var named = await rig.Runtime.CreateConversationAsync(agent, "house-model", Ct);
        var plain = await rig.Runtime.CreateConversationAsync(agent, null, Ct);

        Assert.Equal((agent.ExternalId, $"aichat-{agent.UserId:N}/house-model"), (rig.Letta.Conversation(named!)!.AgentId, rig.Letta.Conversation(named!)!.Model));
        Assert.Null(rig.Letta.Conversation(plain!)!.Model);
        Assert.False(rig.Runtime.CanRegenerate);
    }

    [Fact]
    public async Task ATurnInAConversationIsSentThereAfterItsSystemMessageIsCompiledAgain()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        var conversationId = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;
        await rig.Runtime.UpdateBlocksAsync(agent, [new BlockUpdate("human", "Name: Ana")], Ct);
        rig.Llm.Reply("Hello Ana!", prompt: 80, completion: 3);

        var events = await CollectAsync(rig.Runtime.RunTurnAsync(InConversation(agent, conversationId), new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));

        Assert.Equal(new AgentEvent.Completed("Hello Ana!", "end_turn"), events[^1]);
        Assert.Equal(
            [$"/v1/conversations/{conversationId}/recompile", $"/v1/conversations/{conversationId}/messages"],
            rig.Letta.Requests.Where(r => r.Path.StartsWith("/v1/conversations/conv-", StringComparison.Ordinal)).Select(r => r.Path));
        Assert.Contains("Name: Ana", rig.Llm.Calls.Single().Body["messages"]![0]!["content"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal([("user", "Hi"), ("assistant", "Hello Ana!")], rig.Letta.Conversation(conversationId)!.Messages);
        Assert.Empty(rig.Letta.Agent(agent.ExternalId!)!.Messages);
    }

    [Fact]
    public async Task AConversationsModelIsSentAsTheOverrideOfEveryTurn()
    {
        await using var rig = await LettaRig.StartAsync();
        rig.Llm.Models.Add("house-model");
        var agent = await rig.CreateAgentAsync();
        var conversationId = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;
        var input = new TurnInput(agent.UserId, Guid.NewGuid(), "Hi");

        var inConversation = await CollectAsync(rig.Runtime.RunTurnAsync(InConversation(agent, conversationId, "house-model"), input, Ct));
        var agentDirect = await CollectAsync(rig.Runtime.RunTurnAsync(agent with { Conversation = new ConversationState(Guid.NewGuid(), true, "house-model", null, null, 0, 0) }, input, Ct));

        Assert.Equal(new AgentEvent.Usage("house-model", 100, 20, null), inConversation[^2]);
        Assert.IsType<AgentEvent.Completed>(agentDirect[^1]);
        Assert.Equal(["house-model", "house-model"], rig.Llm.Calls.Select(call => call.Body["model"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AModelLettaCannotResolveFailsTheTurnAsUnavailable()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        var conversationId = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;

        var events = await CollectAsync(rig.Runtime.RunTurnAsync(InConversation(agent, conversationId, "gpt-5-unlisted"), new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));

        var failed = Assert.IsType<AgentEvent.Failed>(Assert.Single(events));
        Assert.Equal("agent_unavailable", failed.Code);
        Assert.Contains("gpt-5-unlisted not found", failed.Detail, StringComparison.Ordinal);
        Assert.Empty(rig.Llm.Calls);
    }

    [Fact]
    public async Task ACancelledTurnInAConversationCancelsItsRunInLetta()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        var conversationId = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;
        rig.Llm.Hold();
        using var cancellation = new CancellationTokenSource();

        var turn = CollectAsync(rig.Runtime.RunTurnAsync(InConversation(agent, conversationId), new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), cancellation.Token));
        await Chat.ChatTests.WaitForAsync(() => Task.FromResult(rig.Llm.Waiting == 1 ? (object)true : null));
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => turn);
        Assert.Equal("cancelled", Assert.Single(rig.Letta.Runs).Status);
        Assert.Single(rig.Letta.Requests, r => r.Method == "POST" && r.Path == $"/v1/conversations/{conversationId}/cancel");
    }

    [Fact]
    public async Task DeletingAConversationTwiceOrWhileLettaIsDownIsNoError()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        var conversationId = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;

        var other = (await rig.Runtime.CreateConversationAsync(agent, null, Ct))!;

        await rig.Runtime.DeleteConversationAsync(agent, conversationId, Ct);
        await rig.Runtime.DeleteConversationAsync(agent, conversationId, Ct);
        rig.Letta.FailNextRequests(1);
        await rig.Runtime.DeleteConversationAsync(agent, other, Ct);

        Assert.True(rig.Letta.Conversation(conversationId)!.Deleted);
        Assert.False(rig.Letta.Conversation(other)!.Deleted);
        Assert.Equal(3, rig.Letta.Requests.Count(r => r.Method == "DELETE" && r.Path.StartsWith("/v1/conversations/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task EveryCallCarriesThePasswordAndLettasOwnUserAgentEvenWhenTheHttpClientHasAnother()
    {
        await using var rig = await LettaRig.StartAsync(configureHttp: http => http.DefaultRequestHeaders.UserAgent.ParseAdd("AiChat/1.0"));
        var agent = await rig.CreateAgentAsync();

        var events = await CollectAsync(rig.Runtime.RunTurnAsync(agent, new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));
        await rig.Runtime.GetBlocksAsync(agent, Ct);

        Assert.IsType<AgentEvent.Completed>(events[^1]);
        Assert.NotEmpty(rig.Letta.Requests);
        Assert.All(rig.Letta.Requests, request =>
        {
            Assert.Equal(LettaClient.UserAgent, request.UserAgent);
            Assert.Equal($"Bearer {rig.Letta.Password}", request.Authorization);
        });
    }

    [Fact]
    public async Task AWrongPasswordIsRefusedAsUnavailable()
    {
        await using var rig = await LettaRig.StartAsync(options => options.Password = "not-the-password");
        var agent = rig.Record(Guid.NewGuid(), "agent-missing");

        var error = await Assert.ThrowsAsync<AgentRuntimeUnavailableException>(() => rig.Runtime.GetBlocksAsync(agent, Ct));
        var events = await CollectAsync(rig.Runtime.RunTurnAsync(agent, new TurnInput(agent.UserId, Guid.NewGuid(), "Hi"), Ct));

        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.Equal("agent_unavailable", Assert.IsType<AgentEvent.Failed>(Assert.Single(events)).Code);
    }

    [Fact]
    public async Task AnUnreachableLettaIsUnavailableAndUnhealthy()
    {
        await using var rig = await LettaRig.StartAsync();
        var agent = await rig.CreateAgentAsync();
        await rig.Letta.DisposeAsync();

        await Assert.ThrowsAsync<AgentRuntimeUnavailableException>(() => rig.Runtime.GetBlocksAsync(agent, Ct));

        Assert.False(await rig.Client.IsHealthyAsync(Ct));
    }

    [Fact]
    public async Task TheRuntimeRegisteredWithTheServiceDefaultsRunsATurn()
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var llm = await ChatCompletionsResponder.StartAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Letta:BaseUrl"] = letta.Url.ToString(),
            ["Letta:Password"] = letta.Password,
            ["Letta:LlmBaseUrl"] = llm.BaseUrl,
        });
        builder.Logging.AddProvider(new LogSink.Provider());
        builder.AddServiceDefaults();
        builder.AddLettaRuntime();
        builder.Services.AddSingleton<IInternalLlmKeys, FakeLlmKeys>();
        using var host = builder.Build();

        var runtime = host.Services.GetRequiredKeyedService<IAgentRuntime>(AgentRuntimes.Letta);
        var userId = Guid.NewGuid();
        var externalId = await runtime.CreateAsync(LettaRig.RecordFor(userId, null), LettaRig.Defaults, Ct);
        var events = await CollectAsync(runtime.RunTurnAsync(LettaRig.RecordFor(userId, externalId), new TurnInput(userId, Guid.NewGuid(), "Hi"), Ct));

        Assert.Equal("letta", runtime.Name);
        Assert.Equal(new AgentEvent.Completed(ChatCompletionsResponder.DefaultText, "end_turn"), events[^1]);
        Assert.All(letta.Requests, request => Assert.Equal(LettaClient.UserAgent, request.UserAgent));
        Assert.Equal(new FakeLlmKeys().KeyFor(userId), Assert.Single(letta.LlmCalls).ApiKey);
    }

    // The agent as a turn in that Letta conversation reads it with its lease.
    private static AgentRecord InConversation(AgentRecord agent, string conversationId, string? model = null) =>
        agent with { Conversation = new ConversationState(Guid.NewGuid(), false, model, conversationId, null, 0, 0) };

    private static async Task<List<AgentEvent>> CollectAsync(IAsyncEnumerable<AgentEvent> events)
    {
        var list = new List<AgentEvent>();
        await foreach (var item in events)
        {
            list.Add(item);
        }

        return list;
    }
}

/// <summary>FakeLetta, the LLM responder it calls, and a runtime wired to both, with secrets registered for the leak check.</summary>
internal sealed class LettaRig : IAsyncDisposable
{
    public const string Persona = "You are a warm, concise assistant.";

    private readonly HttpClient http;
    private readonly ILoggerFactory loggers;

    private LettaRig(FakeLetta letta, ChatCompletionsResponder llm, LettaOptions options, HttpClient http)
    {
        Letta = letta;
        Llm = llm;
        Options = options;
        this.http = http;
        loggers = LoggerFactory.Create(logging => logging.AddProvider(new LogSink.Provider()).SetMinimumLevel(LogLevel.Trace));
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        Client = new LettaClient(http, wrapped, loggers.CreateLogger<LettaClient>());
        Runtime = new LettaRuntime(Client, Keys, wrapped, loggers.CreateLogger<LettaRuntime>());
    }

    public static AgentDefaults Defaults { get; } = new(
        [
            new MemoryBlock("human", "", 5000, "What the agent knows about the user.", DateTimeOffset.UtcNow),
            new MemoryBlock("persona", Persona, 5000, "Who the agent is.", DateTimeOffset.UtcNow),
        ],
        "gpt-4o-mini");

    public FakeLetta Letta { get; }

    public ChatCompletionsResponder Llm { get; }

    public LettaOptions Options { get; }

    public FakeLlmKeys Keys { get; } = new();

    public LettaClient Client { get; }

    public LettaRuntime Runtime { get; }

    public static async Task<LettaRig> StartAsync(Action<LettaOptions>? configure = null, Action<HttpClient>? configureHttp = null)
    {
        var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        var llm = await ChatCompletionsResponder.StartAsync();
        var options = new LettaOptions
        {
            BaseUrl = letta.Url,
            Password = letta.Password,
            LlmBaseUrl = llm.BaseUrl,
            RetryDelay = TimeSpan.FromMilliseconds(5),
            RequestTimeout = TimeSpan.FromSeconds(10),
        };
        configure?.Invoke(options);
        if (options.Password is not null)
        {
            LogSink.Secret(options.Password);
        }

        var http = new HttpClient();
        configureHttp?.Invoke(http);
        return new LettaRig(letta, llm, options, http);
    }

    public static AgentRecord RecordFor(Guid userId, string? externalId) =>
        new(Guid.NewGuid(), userId, AgentRuntimes.Letta, externalId, "ready", "gpt-4o-mini", DateTimeOffset.UtcNow, null);

    public AgentRecord Record(Guid userId, string? externalId) => RecordFor(userId, externalId);

    public async Task<AgentRecord> CreateAgentAsync()
    {
        var userId = Guid.NewGuid();
        var externalId = await Runtime.CreateAsync(Record(userId, null), Defaults, TestContext.Current.CancellationToken);
        return Record(userId, externalId);
    }

    public async ValueTask DisposeAsync()
    {
        http.Dispose();
        loggers.Dispose();
        await Letta.DisposeAsync();
        await Llm.DisposeAsync();
    }
}

/// <summary>Per-user keys for the metered LLM endpoint, derived from the user id.</summary>
internal sealed class FakeLlmKeys : IInternalLlmKeys
{
    private const string Prefix = "sk-aichat-test-";

    public string KeyFor(Guid userId) => LogSink.Secret($"{Prefix}{userId:N}");

    public Guid? UserFor(string key) =>
        key.StartsWith(Prefix, StringComparison.Ordinal) && Guid.TryParseExact(key[Prefix.Length..], "N", out var id) ? id : null;
}

/// <summary>
/// A minimal OpenAI-compatible chat-completions endpoint standing in for AiChat's metered <c>/internal/llm/v1</c>:
/// answers queued replies in order (a fixed text when none is queued), each with usage, and records who called.
/// </summary>
internal sealed class ChatCompletionsResponder : IAsyncDisposable
{
    public const string DefaultText = "Hello from the test model.";

    private readonly WebApplication app;
    private readonly ConcurrentQueue<JsonObject> replies = new();
    private readonly ConcurrentQueue<Call> calls = new();
    private readonly ConcurrentQueue<string> modelListings = new();
    private int failStatus;
    private int waiting;
    private TaskCompletionSource? held;

    private ChatCompletionsResponder()
    {
        app = FakeHost.CreateBuilder().Build();
        app.MapPost("/internal/llm/v1/chat/completions", (RequestDelegate)AnswerAsync);
        app.MapGet("/internal/llm/v1/models", (RequestDelegate)ListModelsAsync);
    }

    /// <summary>What Letta is told as the provider's base URL.</summary>
    public string BaseUrl { get; private set; } = "";

    public IReadOnlyList<Call> Calls => calls.ToArray();

    /// <summary>The Authorization header of every <c>GET /models</c>.</summary>
    public IReadOnlyList<string> ModelListings => modelListings.ToArray();

    /// <summary>The models <c>GET /models</c> offers.</summary>
    public List<string> Models { get; } = ["gpt-4o-mini"];

    public static async Task<ChatCompletionsResponder> StartAsync()
    {
        var responder = new ChatCompletionsResponder();
        responder.BaseUrl = await FakeHost.StartOnLoopbackAsync(responder.app) + "/internal/llm/v1";
        return responder;
    }

    public void Reply(string content, int prompt, int completion) =>
        replies.Enqueue(Completion(new JsonObject { ["role"] = "assistant", ["content"] = content }, "stop", prompt, completion));

    public void ReplyWithToolCall(string name, string arguments, int prompt, int completion) =>
        replies.Enqueue(Completion(
            new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = null,
                ["tool_calls"] = new JsonArray(new JsonObject
                {
                    ["id"] = "call_" + Guid.NewGuid().ToString("N")[..12],
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments },
                }),
            },
            "tool_calls",
            prompt,
            completion));

    public void FailWith(HttpStatusCode status) => failStatus = (int)status;

    /// <summary>How many calls are being held right now (see <see cref="Hold"/>).</summary>
    public int Waiting => Volatile.Read(ref waiting);

    /// <summary>From now on every call waits, recorded, until <see cref="Release"/> (or until its caller gives up).</summary>
    public void Hold() => held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets every held call, and every later one, be answered.</summary>
    public void Release() => held?.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        await FakeHost.StopAsync(app);
    }

    private async Task AnswerAsync(HttpContext ctx)
    {
        var body = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted) as JsonObject ?? [];
        calls.Enqueue(new Call(ctx.Request.Headers.Authorization.ToString(), body));
        if (held is { } gate)
        {
            Interlocked.Increment(ref waiting);
            try
            {
                await gate.Task.WaitAsync(ctx.RequestAborted);
            }
            finally
            {
                Interlocked.Decrement(ref waiting);
            }
        }

        ctx.Response.ContentType = "application/json";
        if (failStatus != 0)
        {
            ctx.Response.StatusCode = failStatus;
            await ctx.Response.WriteAsync("""{"error":{"message":"Budget exceeded","type":"budget_exceeded","code":"budget_exceeded"}}""", ctx.RequestAborted);
            return;
        }

        var reply = replies.TryDequeue(out var queued)
            ? queued
            : Completion(new JsonObject { ["role"] = "assistant", ["content"] = DefaultText }, "stop", 100, 20);
        reply["model"] = body["model"]?.DeepClone();
        await ctx.Response.WriteAsync(reply.ToJsonString(), ctx.RequestAborted);
    }

    private Task ListModelsAsync(HttpContext ctx)
    {
        modelListings.Enqueue(ctx.Request.Headers.Authorization.ToString());
        ctx.Response.ContentType = "application/json";
        var models = new JsonArray(Models.Select(id => (JsonNode)new JsonObject { ["id"] = id, ["object"] = "model", ["owned_by"] = "aichat" }).ToArray());
        return ctx.Response.WriteAsync(new JsonObject { ["object"] = "list", ["data"] = models }.ToJsonString(), ctx.RequestAborted);
    }

    private static JsonObject Completion(JsonObject message, string finishReason, int prompt, int completion) => new()
    {
        ["id"] = "chatcmpl-" + Guid.NewGuid().ToString("N"),
        ["object"] = "chat.completion",
        ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = finishReason }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion },
    };

    public sealed record Call(string Authorization, JsonObject Body);
}
