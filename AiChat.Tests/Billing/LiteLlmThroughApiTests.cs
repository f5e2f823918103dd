using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Billing;

/// <summary>The full profile's billing: a LiteLLM user and virtual key per account, calls through LiteLLM with that key.</summary>
[Trait("Category", "Billing")]
public sealed class LiteLlmThroughApiTests(PostgresServer postgres) : IAsyncLifetime
{
    private FakeLiteLlm _liteLlm = null!;
    private ApiFactory _api = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync() =>
        _liteLlm = await FakeLiteLlm.StartAsync(LogSink.Secret("sk-master-" + Guid.NewGuid().ToString("N")));

    /// <summary>The API on the store, in front of the fake LiteLLM, with an admin.</summary>
    private async Task StartAsync(StoreProvider provider)
    {
        _api = await new ApiFactory()
            .WithSetting("LiteLlm:BaseUrl", _liteLlm.Url.ToString())
            .WithSetting("LiteLlm:MasterKey", _liteLlm.MasterKey)
            .WithSetting("Llm:Endpoint", new Uri(_liteLlm.Url, "/v1").ToString())
            .WithSetting("Llm:Model", "gpt-4o-mini")
            .WithSetting("Llm:MaxOutputTokens", "200")
            .OnAsync(provider, postgres);
        _client = _api.CreateClient();
        AdminToken = (await _client.RegisterAdminAsync(_api)).AccessToken;
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }

        await _liteLlm.DisposeAsync();
    }

    private string AdminToken { get; set; } = "";

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task EachAccountGetsALiteLlmUserWithItsBudgetAndAnEncryptedKeyThatNeverLeaves(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();

        var user = _liteLlm.User(pair.UserId);
        Assert.NotNull(user);
        Assert.Equal((10m, "1mo"), (user!.MaxBudget, user.BudgetDuration));
        var key = Assert.Single(_liteLlm.Keys, k => k.UserId == pair.UserId.ToString());
        LogSink.Secret(key.Raw);
        Assert.Null(key.TeamId);

        var stored = await ScalarAsync($"SELECT litellm_key_protected FROM billing_accounts WHERE user_id = '{pair.UserId}'");
        Assert.False(string.IsNullOrEmpty(stored));
        Assert.DoesNotContain(key.Raw, stored);
        foreach (var path in new[] { "/api/v1/auth/me", "/api/v1/user/export", "/api/v1/user/budget", "/api/v1/user/profile", "/api/v1/agent/status" })
        {
            var body = await (await _client.GetWithTokenAsync(path, pair.AccessToken)).Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.DoesNotContain(key.Raw, body);
            Assert.DoesNotContain(stored!, body);
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TurnsGoThroughLiteLlmWithTheUsersOwnKey(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(_client, pair.AccessToken); // the turn's own call only: no title call
        var key = _liteLlm.Keys.Single(k => k.UserId == pair.UserId.ToString()).Raw;
        _liteLlm.QueueReply("Hello through LiteLLM", promptTokens: 10, completionTokens: 5);

        var response = await _client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hi")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello through LiteLLM", (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("assistant_message").GetProperty("content").GetString());
        var call = Assert.Single(_liteLlm.Requests, r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));
        Assert.Equal($"Bearer {key}", call.Authorization);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheCostLiteLlmReportsIsWhatTheLedgerRecords(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(_client, pair.AccessToken); // the turn's own cost only: no title call
        _liteLlm.PromptTokenPriceUsd = 0.000001m;
        _liteLlm.CompletionTokenPriceUsd = 0.000002m;
        _liteLlm.QueueReply("priced by LiteLLM", promptTokens: 10, completionTokens: 5);

        var (_, reader) = await SseReader.OpenAsync(_client, SseReader.Send(pair.AccessToken, "hi"));
        var events = await reader.ReadAllAsync();

        Assert.Equal(0.00002m, events.Single(e => e.Event == "usage").Data.GetProperty("cost_usd").GetDecimal());
        var budget = await (await _client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(0.00002m, budget.GetProperty("spent_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task APersonalLimitReachesLiteLlm(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();

        await _client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", pair.AccessToken, new { personal_limit_usd = 4m });

        Assert.Equal(4m, _liteLlm.User(pair.UserId)!.MaxBudget);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AGrantChangeReachesLiteLlm(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();

        var granted = await _client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{pair.UserId}/budget", AdminToken, new { max_budget_usd = 25m, duration = "1w" });

        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        Assert.Equal((25m, "7d"), (_liteLlm.User(pair.UserId)!.MaxBudget, _liteLlm.User(pair.UserId)!.BudgetDuration));
    }

    public static TheoryData<StoreProvider, int> BudgetRefusals() => new()
    {
        { StoreProvider.Sqlite, 429 }, { StoreProvider.Sqlite, 400 }, { StoreProvider.Postgres, 429 }, { StoreProvider.Postgres, 400 },
    };

    [Theory]
    [MemberData(nameof(BudgetRefusals))]
    public async Task LiteLlmsBudgetRefusalIsOurPaymentRequiredAndChargesNothing(StoreProvider provider, int status)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        _liteLlm.BudgetErrorStatus = status;
        _liteLlm.SetSpend(pair.UserId, 10m);

        var response = await _client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hi")), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.PaymentRequired, "budget_exceeded");
        var budget = await (await _client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(0m, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhenLiteLlmFailsDuringProvisioningNoAccountIsLeftAndARetrySucceeds(StoreProvider provider)
    {
        await StartAsync(provider);
        _liteLlm.FailNext(500, "internal_server_error");
        var email = Accounts.NewEmail();

        var failed = await _client.PostAsJsonAsync("/api/v1/auth/register", new { email, password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(failed, HttpStatusCode.ServiceUnavailable, "provisioning_failed");
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(_api, "SELECT COUNT(*) FROM users")); // the admin only
        Assert.Single(_liteLlm.Users); // the admin's
        await _client.RegisterAsync(email);
        Assert.Equal(2, _liteLlm.Users.Count);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingTheAccountDeletesItsLiteLlmUserAndKey(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Null(_liteLlm.User(pair.UserId));
        Assert.DoesNotContain(_liteLlm.Keys, k => k.UserId == pair.UserId.ToString());
    }

    private async Task<string?> ScalarAsync(string sql)
    {
        await using var connection = await _api.Services.GetRequiredService<AiChat.Api.Data.AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        return await Dapper.SqlMapper.ExecuteScalarAsync<string?>(connection, sql);
    }
}
