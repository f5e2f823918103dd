using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiChat.Api.Billing;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenAI;
using OpenAI.Chat;

namespace AiChat.Tests.Billing;

/// <summary>The LiteLLM management client against the LiteLLM contract fake, and how AiChat reads the fake's refusals through a real OpenAI client.</summary>
[Trait("Category", "LiteLlm")]
public sealed class LiteLlmClientTests
{
    private const string Model = "gpt-4o-mini";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CreatingAUserAndAKeyBindsANewVirtualKeyToThatUser()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();

        Assert.True(await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct));
        var key = LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        Assert.StartsWith("sk-", key, StringComparison.Ordinal);
        var user = rig.LiteLlm.User(userId)!;
        Assert.Equal((10m, "1mo", 0m), (user.MaxBudget, user.BudgetDuration, user.Spend));
        var issued = Assert.Single(rig.LiteLlm.Keys);
        Assert.Equal((key, userId.ToString(), $"aichat-{userId:N}", null), (issued.Raw, issued.UserId, issued.Alias, issued.TeamId));
        Assert.Equal("""{"app":"aichat"}""", issued.Metadata);

        var created = JsonNode.Parse(rig.LiteLlm.Requests.Single(r => r.Path == "/user/new").Body)!;
        Assert.False(created["auto_create_key"]!.GetValue<bool>());
        var generated = JsonNode.Parse(rig.LiteLlm.Requests.Single(r => r.Path == "/key/generate").Body)!.AsObject();
        Assert.False(generated.ContainsKey("team_id"));
        Assert.All(rig.LiteLlm.Requests, request => Assert.Equal($"Bearer {rig.LiteLlm.MasterKey}", request.Authorization));
    }

    [Fact]
    public async Task CreatingAUserThatAlreadyExistsSucceedsAndLeavesItAsItWas()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);

        var createdAgain = await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);

        Assert.False(createdAgain);
        Assert.Equal(10m, Assert.Single(rig.LiteLlm.Users).MaxBudget);
        Assert.Equal([200, 409], rig.LiteLlm.Requests.Where(r => r.Path == "/user/new").Select(r => r.Status));
    }

    [Fact]
    public async Task GeneratingAgainRevokesTheEarlierKeyAndIssuesANewOne()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);
        var first = LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        var second = LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        Assert.NotEqual(first, second);
        var issued = Assert.Single(rig.LiteLlm.Keys);
        Assert.Equal((second, userId.ToString()), (issued.Raw, issued.UserId));
    }

    [Fact]
    public async Task ABudgetUpdateReachesLiteLlm()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);

        await rig.Client.UpdateUserBudgetAsync(userId, 25.5m, "1w", Ct);

        var user = rig.LiteLlm.User(userId)!;
        Assert.Equal((25.5m, "7d"), (user.MaxBudget, user.BudgetDuration));
    }

    [Fact]
    public async Task UpdatingTheBudgetOfAMissingUserIsRefused()
    {
        await using var rig = await LiteLlmRig.StartAsync();

        var error = await Assert.ThrowsAsync<LiteLlmRefusedException>(() => rig.Client.UpdateUserBudgetAsync(Guid.NewGuid(), 5m, "1mo", Ct));

        Assert.Equal(404, error.Status);
    }

    [Fact]
    public async Task DeletingAKeyRevokesItAndAMissingKeyIsNoError()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);
        var key = LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        Assert.True(await rig.Client.DeleteKeyAsync(key, Ct));
        Assert.False(await rig.Client.DeleteKeyAsync(key, Ct));

        Assert.Empty(rig.LiteLlm.Keys);
        Assert.NotNull(rig.LiteLlm.User(userId));
    }

    [Fact]
    public async Task DeletingAUserRemovesItWithItsKeysAndAMissingUserIsNoError()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);
        LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        Assert.True(await rig.Client.DeleteUserAsync(userId, Ct));
        Assert.False(await rig.Client.DeleteUserAsync(userId, Ct));

        Assert.Empty(rig.LiteLlm.Users);
        Assert.Empty(rig.LiteLlm.Keys);
    }

    [Fact]
    public async Task SpendIsReadWithTheBudgetAndItsResetTime()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);
        rig.LiteLlm.SetSpend(userId, 1.25m);

        var spend = await rig.Client.GetUserSpendAsync(userId, Ct);

        var resetAt = rig.LiteLlm.User(userId)!.BudgetResetAt;
        Assert.NotNull(resetAt);
        Assert.Equal(new LiteLlmUserSpend(1.25m, 10m, resetAt), spend);
        Assert.Null(await rig.Client.GetUserSpendAsync(Guid.NewGuid(), Ct));
    }

    [Theory]
    [InlineData("1d", "1d")]
    [InlineData("1w", "7d")]
    [InlineData("1mo", "1mo")]
    [InlineData("3mo", "90d")]
    [InlineData("6mo", "180d")]
    [InlineData("1y", "365d")]
    public void EveryPeriodMapsToADurationLiteLlmAcceptsAndThatDurationMapsToItself(string period, string duration)
    {
        Assert.Equal(duration, LiteLlmClient.Duration(period));
        Assert.Equal(duration, LiteLlmClient.Duration(duration));
    }

    [Theory]
    [InlineData("2w")]
    [InlineData("1M")]
    [InlineData("")]
    public void AnUnknownPeriodIsRejected(string period) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LiteLlmClient.Duration(period));

    [Fact]
    public async Task EveryPeriodIsAcceptedByLiteLlm()
    {
        await using var rig = await LiteLlmRig.StartAsync();

        foreach (var period in new[] { "1d", "1w", "1mo", "3mo", "6mo", "1y" })
        {
            var userId = Guid.NewGuid();
            await rig.Client.CreateUserAsync(userId, 1m, period, Ct);
            await rig.Client.UpdateUserBudgetAsync(userId, 2m, period, Ct);
            Assert.Equal(LiteLlmClient.Duration(period), rig.LiteLlm.User(userId)!.BudgetDuration);
        }
    }

    [Fact]
    public async Task AnUnreachableLiteLlmIsUnavailable()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        await rig.LiteLlm.DisposeAsync();
        var userId = Guid.NewGuid();

        await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct));
        await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.GenerateKeyAsync(userId, Ct));
        await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.GetUserSpendAsync(userId, Ct));
        await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.DeleteUserAsync(userId, Ct));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    public async Task AServerErrorIsUnavailable(int status)
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();

        rig.LiteLlm.FailNext(status, "internal_server_error", "Database not connected");
        var write = await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct));
        rig.LiteLlm.FailNext(status, "internal_server_error", "Database not connected");
        await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.GetUserSpendAsync(userId, Ct));

        Assert.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture), write.Message, StringComparison.Ordinal);
        Assert.Empty(rig.LiteLlm.Users);
    }

    [Fact]
    public async Task AWrongMasterKeyIsRefusedWithoutTheKeyInTheMessage()
    {
        var wrongKey = LogSink.Secret("sk-wrong-" + Guid.NewGuid().ToString("N"));
        await using var rig = await LiteLlmRig.StartAsync(options => options.MasterKey = wrongKey);

        var error = await Assert.ThrowsAsync<LiteLlmRefusedException>(() => rig.Client.CreateUserAsync(Guid.NewGuid(), 10m, "1mo", Ct));

        Assert.Equal((401, "auth_error"), (error.Status, error.ErrorType));
        Assert.DoesNotContain(wrongKey, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(rig.LiteLlm.MasterKey, error.ToString(), StringComparison.Ordinal);
        Assert.Empty(rig.LiteLlm.Users);
    }

    [Fact]
    public async Task AKeyThatLiteLlmEchoesInAnErrorNeverReachesTheMessage()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var userId = Guid.NewGuid();
        await rig.Client.CreateUserAsync(userId, 10m, "1mo", Ct);
        var key = LogSink.Secret(await rig.Client.GenerateKeyAsync(userId, Ct));

        rig.LiteLlm.FailNext(400, "bad_request_error", $"Failed to delete all keys. Tried to delete: ['{key}']");
        var refused = await Assert.ThrowsAsync<LiteLlmRefusedException>(() => rig.Client.DeleteKeyAsync(key, Ct));
        rig.LiteLlm.FailNext(503, "internal_server_error", $"Proxy started with master_key={rig.LiteLlm.MasterKey}");
        var unavailable = await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => rig.Client.DeleteKeyAsync(key, Ct));

        Assert.Contains("Tried to delete", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(key, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(rig.LiteLlm.MasterKey, unavailable.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutAMasterKeyLiteLlmIsDisabledAndNotCalled()
    {
        await using var rig = await LiteLlmRig.StartAsync(options => options.MasterKey = null);

        await Assert.ThrowsAsync<InvalidOperationException>(() => rig.Client.CreateUserAsync(Guid.NewGuid(), 10m, "1mo", Ct));

        Assert.False(rig.Options.Enabled);
        Assert.Empty(rig.LiteLlm.Requests);
    }

    [Fact]
    public async Task TheClientRegisteredWithTheServiceDefaultsProvisionsAUser()
    {
        await using var liteLlm = await FakeLiteLlm.StartAsync();
        using var host = BuildHost(liteLlm.Url.ToString(), liteLlm.MasterKey);

        var options = host.Services.GetRequiredService<IOptions<LiteLlmOptions>>().Value;
        var client = host.Services.GetRequiredService<LiteLlmClient>();
        var userId = Guid.NewGuid();
        await client.CreateUserAsync(userId, 3m, "1d", Ct);
        LogSink.Secret(await client.GenerateKeyAsync(userId, Ct));

        Assert.True(options.Enabled);
        Assert.Equal(liteLlm.Url, options.BaseUrl);
        Assert.Equal(userId.ToString(), Assert.Single(liteLlm.Keys).UserId);
        Assert.Equal(new LiteLlmUserSpend(0m, 3m, liteLlm.User(userId)!.BudgetResetAt), await client.GetUserSpendAsync(userId, Ct));
    }

    [Fact]
    public async Task ThroughTheServiceDefaultsAnUnreachableLiteLlmIsUnavailable()
    {
        var liteLlm = await FakeLiteLlm.StartAsync();
        await liteLlm.DisposeAsync();
        using var host = BuildHost(liteLlm.Url.ToString(), liteLlm.MasterKey);
        var client = host.Services.GetRequiredService<LiteLlmClient>();

        var error = await Assert.ThrowsAsync<LiteLlmUnavailableException>(() => client.CreateUserAsync(Guid.NewGuid(), 3m, "1d", Ct));

        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public void TheDefaultsPointAtTheLiteLlmResourceAndAMasterKeyMustStartWithSk()
    {
        var notAKey = LogSink.Secret("master-" + Guid.NewGuid().ToString("N"));
        using var unset = BuildHost(baseUrl: null, masterKey: null);
        using var wrong = BuildHost(baseUrl: null, masterKey: notAKey);

        var defaults = unset.Services.GetRequiredService<IOptions<LiteLlmOptions>>().Value;
        var error = Assert.Throws<OptionsValidationException>(() => wrong.Services.GetRequiredService<IOptions<LiteLlmOptions>>().Value);

        Assert.Equal(new Uri("http://litellm"), defaults.BaseUrl);
        Assert.False(defaults.Enabled);
        Assert.DoesNotContain(notAKey, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(429, """{"error":{"message":"Budget has been exceeded! User=3f2a Current cost: 10.0031, Max budget: 10.0","type":"budget_exceeded","param":null,"code":"429"}}""", true)]
    [InlineData(400, """{"error":{"message":"Budget has been exceeded! User=3f2a Current cost: 10.0031, Max budget: 10.0","type":"budget_exceeded","param":null,"code":"400"}}""", true)]
    [InlineData(429, """{"error":{"message":"Rate limit reached for requests. Limit: 60","type":"throttling_error","param":null,"code":"429"}}""", false)]
    [InlineData(429, """{"error":{"message":"Budget has been exceeded!","type":null,"param":null,"code":"429"}}""", false)]
    [InlineData(401, """{"error":{"message":"Authentication Error","type":"auth_error","param":"None","code":"401"}}""", false)]
    [InlineData(429, "Too Many Requests", false)]
    [InlineData(429, "", false)]
    public void TheBudgetErrorIsRecognisedByItsTypeWhateverTheStatus(int status, string body, bool expected) =>
        Assert.Equal(expected, LiteLlmErrors.IsBudgetExceeded(status, body));

    [Theory]
    [InlineData(429)]
    [InlineData(400)]
    public async Task AnExhaustedBudgetSurfacesAsAClientResultExceptionRecognisedAsBudgetExceeded(int status)
    {
        await using var rig = await LiteLlmRig.StartAsync();
        rig.LiteLlm.BudgetErrorStatus = status;
        var (userId, key) = await rig.ProvisionAsync(10m);
        rig.LiteLlm.SetSpend(userId, 10m);
        using var chat = ChatClientFor(rig.LiteLlm, key);

        var plain = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("Hi", cancellationToken: Ct));
        var streamed = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in chat.GetStreamingResponseAsync("Hi", cancellationToken: Ct))
            {
            }
        });

        Assert.Equal(status, plain.Status);
        Assert.Equal(status, streamed.Status);
        Assert.True(LiteLlmErrors.IsBudgetExceeded(plain));
        Assert.True(LiteLlmErrors.IsBudgetExceeded(streamed));
        var error = JsonNode.Parse(plain.GetRawResponse()!.Content.ToString())!["error"]!;
        Assert.Equal("budget_exceeded", error["type"]!.GetValue<string>());
        Assert.StartsWith($"Budget has been exceeded! User={userId}", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(status.ToString(System.Globalization.CultureInfo.InvariantCulture), error["code"]!.GetValue<string>());
        Assert.Equal(10m, rig.LiteLlm.User(userId)!.Spend);
    }

    [Fact]
    public async Task SpendReachingTheBudgetRefusesTheNextCall()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        rig.LiteLlm.PromptTokenPriceUsd = 0.001m;
        rig.LiteLlm.CompletionTokenPriceUsd = 0.002m;
        var (_, key) = await rig.ProvisionAsync(0.5m);
        rig.LiteLlm.QueueReply("Long answer.", promptTokens: 400, completionTokens: 100);
        using var chat = ChatClientFor(rig.LiteLlm, key);

        await chat.GetResponseAsync("Hi", cancellationToken: Ct);
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("Again", cancellationToken: Ct));

        Assert.Equal(429, refused.Status);
        Assert.True(LiteLlmErrors.IsBudgetExceeded(refused));
    }

    [Fact]
    public async Task AnUnknownVirtualKeyIsRefusedWithAnAuthError()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var unknown = LogSink.Secret("sk-" + Guid.NewGuid().ToString("N"));
        using var chat = ChatClientFor(rig.LiteLlm, unknown);

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("Hi", cancellationToken: Ct));

        Assert.Equal(401, error.Status);
        Assert.Equal("auth_error", JsonNode.Parse(error.GetRawResponse()!.Content.ToString())!["error"]!["type"]!.GetValue<string>());
        Assert.False(LiteLlmErrors.IsBudgetExceeded(error));
    }

    [Fact]
    public async Task AVirtualKeyCannotManageLiteLlm()
    {
        await using var rig = await LiteLlmRig.StartAsync();
        var (_, key) = await rig.ProvisionAsync(10m);
        var asUser = new LiteLlmClient(new HttpClient(), Options.Create(new LiteLlmOptions { BaseUrl = rig.LiteLlm.Url, MasterKey = key }), rig.Logger);

        var error = await Assert.ThrowsAsync<LiteLlmRefusedException>(() => asUser.UpdateUserBudgetAsync(Guid.NewGuid(), 1000m, "1mo", Ct));

        Assert.Equal(401, error.Status);
        Assert.DoesNotContain(key, error.Message, StringComparison.Ordinal);
    }

    internal static IChatClient ChatClientFor(FakeLiteLlm liteLlm, string key) =>
        new ChatClient(Model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(liteLlm.Url, "/v1"),
            RetryPolicy = new ClientRetryPolicy(0),
        }).AsIChatClient();

    // LiteLLM's cost is not part of OpenAI's usage type; it survives as an extra property of the raw chunk.
    internal static decimal CostOf(ChatResponseUpdate update)
    {
        var raw = Assert.IsType<StreamingChatCompletionUpdate>(update.RawRepresentation);
        var json = JsonNode.Parse(ModelReaderWriter.Write(raw).ToString())!;
        return json["usage"]!["cost"]!.GetValue<decimal>();
    }

    private static IHost BuildHost(string? baseUrl, string? masterKey)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Testing", DisableDefaults = true });
        var settings = new Dictionary<string, string?> { ["LiteLlm:BaseUrl"] = baseUrl, ["LiteLlm:MasterKey"] = masterKey };
        builder.Configuration.AddInMemoryCollection(settings.Where(setting => setting.Value is not null));
        builder.Logging.AddProvider(new LogSink.Provider());
        builder.AddServiceDefaults();
        builder.AddLiteLlm();
        return builder.Build();
    }
}

/// <summary>FakeLiteLlm and a <see cref="LiteLlmClient"/> wired to it, logging into <see cref="LogSink"/>.</summary>
internal sealed class LiteLlmRig : IAsyncDisposable
{
    private readonly HttpClient _http = new();
    private readonly ILoggerFactory _loggers = LoggerFactory.Create(logging => logging.AddProvider(new LogSink.Provider()).SetMinimumLevel(LogLevel.Trace));

    private LiteLlmRig(FakeLiteLlm liteLlm, LiteLlmOptions options)
    {
        LiteLlm = liteLlm;
        Options = options;
        Logger = _loggers.CreateLogger<LiteLlmClient>();
        Client = new LiteLlmClient(_http, Microsoft.Extensions.Options.Options.Create(options), Logger);
    }

    public FakeLiteLlm LiteLlm { get; }

    public LiteLlmOptions Options { get; }

    public LiteLlmClient Client { get; }

    public ILogger<LiteLlmClient> Logger { get; }

    public static async Task<LiteLlmRig> StartAsync(Action<LiteLlmOptions>? configure = null)
    {
        var liteLlm = await FakeLiteLlm.StartAsync();
        var options = new LiteLlmOptions { BaseUrl = liteLlm.Url, MasterKey = liteLlm.MasterKey };
        configure?.Invoke(options);
        return new LiteLlmRig(liteLlm, options);
    }

    /// <summary>A LiteLLM user with this budget over a month, and its virtual key.</summary>
    public async Task<(Guid UserId, string Key)> ProvisionAsync(decimal budgetUsd)
    {
        var userId = Guid.NewGuid();
        await Client.CreateUserAsync(userId, budgetUsd, "1mo", TestContext.Current.CancellationToken);
        return (userId, LogSink.Secret(await Client.GenerateKeyAsync(userId, TestContext.Current.CancellationToken)));
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _loggers.Dispose();
        await LiteLlm.DisposeAsync();
    }
}
