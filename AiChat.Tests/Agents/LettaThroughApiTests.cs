using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Agents;

/// <summary>The API with <c>Agents:Runtime=Letta</c> against the Letta contract fake: same endpoints, same behaviour as built-in.</summary>
[Trait("Category", "Agents")]
public sealed class LettaThroughApiTests : IAsyncLifetime
{
    private FakeLetta _letta = null!;
    private ChatCompletionsResponder _llm = null!;
    private ApiFactory _api = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        _llm = await ChatCompletionsResponder.StartAsync();
        _api = new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", _letta.Url.ToString())
            .WithSetting("Letta:Password", _letta.Password)
            .WithSetting("Letta:LlmBaseUrl", _llm.BaseUrl);
        _client = _api.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        await _api.DisposeAsync();
        await _letta.DisposeAsync();
        await _llm.DisposeAsync();
    }

    [Fact]
    public async Task RegisteringCreatesALettaAgentMeteredAsItsUser()
    {
        var pair = await _client.RegisterAsync(name: "Ana");

        var agent = Assert.Single(_letta.Agents);
        Assert.Contains($"aichat-user:{pair.UserId}", agent.Tags);
        Assert.Equal("Name: Ana", agent.Blocks.Single(b => b.Label == "human").Value);
        var provider = Assert.Single(_letta.Providers);
        var keys = _api.Services.GetRequiredService<IInternalLlmKeys>();
        Assert.Equal(pair.UserId, keys.UserFor(provider.ApiKey));
        Assert.Equal(_llm.BaseUrl, provider.BaseUrl);

        var status = await (await _client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("letta", status.GetProperty("runtime").GetString());
        Assert.Equal("healthy", (await (await _client.GetWithTokenAsync("/api/v1/user/health", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task MemoryEndpointsBehaveAsOnTheBuiltInRuntime()
    {
        var pair = await _client.RegisterAsync(name: "Ana");

        var over = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken,
            new { blocks = new[] { new { label = "persona", value = "changed" }, new { label = "human", value = new string('z', 5001) } } });
        await ApiPipelineTests.AssertProblemAsync(over, HttpStatusCode.UnprocessableEntity, "memory_limit_exceeded");
        Assert.NotEqual("changed", _letta.Agents.Single().Blocks.Single(b => b.Label == "persona").Value);

        var ok = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLikes tea" } } });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("Name: Ana\nLikes tea", _letta.Agents.Single().Blocks.Single(b => b.Label == "human").Value);

        var inserted = await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", pair.AccessToken, new { content = "Ana plays the cello." });
        Assert.Equal(HttpStatusCode.Created, inserted.StatusCode);
        var id = (await inserted.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetString();
        var found = await (await _client.GetWithTokenAsync("/api/v1/agent/memory/archival?query=cello", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(id, found.GetProperty("passages")[0].GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/agent/memory/archival/{id}", pair.AccessToken)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/reset", pair.AccessToken, new { scope = "memory" })).StatusCode);
        Assert.Equal("Name: Ana", _letta.Agents.Single().Blocks.Single(b => b.Label == "human").Value);
    }

    [Fact]
    public async Task ATurnRunsThroughLettaWithTheUsersKey()
    {
        var pair = await _client.RegisterAsync();
        _llm.Reply("Hello Ana!", prompt: 120, completion: 4);

        var events = await _api.RunTurnAsync(pair.UserId, "hi");

        Assert.Equal("Hello Ana!", events.Answer());
        Assert.Contains(events, e => e is AgentEvent.Usage { PromptTokens: 120, CompletionTokens: 4 });
        var call = Assert.Single(_letta.LlmCalls);
        Assert.Equal(pair.UserId, _api.Services.GetRequiredService<IInternalLlmKeys>().UserFor(call.ApiKey!));
    }

    [Fact]
    public async Task DeletingTheAccountDeletesTheLettaAgent()
    {
        var pair = await _client.RegisterAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Empty(_letta.Agents);
        Assert.Empty(_letta.Providers);
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(_api, "SELECT COUNT(*) FROM agents"));
    }

    [Fact]
    public async Task WhenLettaIsDownRegistrationLeavesNothingBehind()
    {
        _letta.FailNextRequests(20);

        var response = await _client.PostAsJsonAsync("/api/v1/auth/register", new { email = Accounts.NewEmail(), password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "provisioning_failed");
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(_api, "SELECT COUNT(*) FROM users"));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(_api, "SELECT COUNT(*) FROM agents"));
    }
}
