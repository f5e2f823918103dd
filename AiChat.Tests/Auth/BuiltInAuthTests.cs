using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Auth;

/// <summary>The built-in identity provider end to end, on both stores.</summary>
[Trait("Category", "Auth")]
public sealed class BuiltInAuthTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegisterLoginRefreshAndLogoutWork(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail("ana");
        var password = Accounts.NewPassword();

        var registered = await client.RegisterAsync(email, password, "Ana");
        Assert.Equal("bearer", registered.TokenType);
        Assert.Equal(900, registered.ExpiresIn);
        Assert.Equal(email, registered.User.GetProperty("email").GetString());
        Assert.Equal("Ana", registered.User.GetProperty("name").GetString());
        Assert.Equal("user", registered.User.GetProperty("role").GetString());

        var me = await client.GetWithTokenAsync("/api/v1/auth/me", registered.AccessToken);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var meJson = await me.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(registered.UserId, meJson.GetProperty("id").GetGuid());
        Assert.Equal(["agent", "created_at", "email", "id", "identity_provider", "name", "role"], meJson.EnumerateObject().Select(p => p.Name).Order());

        var loggedIn = await client.LoginAsync(email.ToUpperInvariant(), password);
        Assert.Equal(registered.UserId, loggedIn.UserId);

        var refreshed = await RefreshAsync(client, loggedIn.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        var pair = await Accounts.ReadPairAsync(refreshed);
        Assert.NotEqual(loggedIn.RefreshToken, pair.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);

        var logout = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/auth/logout", pair.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, logout.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await RefreshAsync(client, pair.RefreshToken)).StatusCode);

        // The registration's own session is untouched by logging out another one.
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", registered.AccessToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARotatedRefreshTokenUsedAgainRevokesTheWholeChain(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var first = await client.RegisterAsync();

        var second = await Accounts.ReadPairAsync(await RefreshAsync(client, first.RefreshToken));
        var third = await Accounts.ReadPairAsync(await RefreshAsync(client, second.RefreshToken));

        var replay = await RefreshAsync(client, first.RefreshToken);
        await ApiPipelineTests.AssertProblemAsync(replay, HttpStatusCode.Unauthorized, "invalid_refresh_token");

        // Everything issued in that chain is now dead, including the newest pair.
        Assert.Equal(HttpStatusCode.Unauthorized, (await RefreshAsync(client, third.RefreshToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/auth/me", third.AccessToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARefreshTokenUsedTwiceAtOnceHasOneWinner(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => RefreshAsync(client, pair.RefreshToken)));

        Assert.Equal(1, results.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WrongPasswordAndUnknownEmailAreTheSameInvalidCredentials(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        await client.RegisterAsync(email);

        var wrongPassword = await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password = LogSink.Secret("definitely-wrong") }, TestContext.Current.CancellationToken);
        var unknownEmail = await client.PostAsJsonAsync("/api/v1/auth/login", new { email = Accounts.NewEmail(), password = LogSink.Secret("definitely-wrong") }, TestContext.Current.CancellationToken);

        var first = await ApiPipelineTests.AssertProblemAsync(wrongPassword, HttpStatusCode.Unauthorized, "invalid_credentials");
        var second = await ApiPipelineTests.AssertProblemAsync(unknownEmail, HttpStatusCode.Unauthorized, "invalid_credentials");
        Assert.Equal(Detail(first), Detail(second));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnEmailIsRegisteredOnceWhateverItsCase(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        await client.RegisterAsync(email);

        var again = await client.PostAsJsonAsync("/api/v1/auth/register", new { email = email.ToUpperInvariant(), password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(again, HttpStatusCode.Conflict, "user_already_exists");
        Assert.Equal(1, await CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    public static TheoryData<StoreProvider, string, string, string?, string, string?> InvalidRegistrations()
    {
        var data = new TheoryData<StoreProvider, string, string, string?, string, string?>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            data.Add(provider, "not-an-email", "long enough password", null, "validation_failed", "email");
            data.Add(provider, "", "long enough password", null, "validation_failed", "email");
            data.Add(provider, "ana@example", "long enough password", null, "validation_failed", "email");
            data.Add(provider, "a b@example.com", "long enough password", null, "validation_failed", "email");
            data.Add(provider, "ok@example.com", "", null, "validation_failed", "password");
            data.Add(provider, "ok@example.com", "long enough password", "   ", "validation_failed", "name");
            data.Add(provider, "ok@example.com", "long enough password", "x101", "validation_failed", "name");
            data.Add(provider, "ok@example.com", "short", null, "weak_password", null);
            data.Add(provider, "ok@example.com", "x73", null, "weak_password", null);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(InvalidRegistrations))]
    public async Task InvalidRegistrationIsRefusedAndCreatesNothing(StoreProvider provider, string email, string password, string? name, string code, string? field)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        password = password == "x73" ? new string('x', 73) : password;
        name = name == "x101" ? new string('n', 101) : name;

        var response = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password, name }, TestContext.Current.CancellationToken);

        var body = await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.UnprocessableEntity, code);
        if (field is not null)
        {
            Assert.True(JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty(field, out _), body);
        }

        Assert.Equal(0, await CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task LoginAttemptsForOneEmailAreRateLimited(StoreProvider provider)
    {
        await using var api = await StartAsync(provider, ("Auth:RateLimits:PerEmail", "3"));
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 4; i++)
        {
            last = await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password = "wrong password" }, TestContext.Current.CancellationToken);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests], statuses);
        await ApiPipelineTests.AssertProblemAsync(last!, HttpStatusCode.TooManyRequests, "over_request_rate_limit");
        Assert.True(last!.Headers.RetryAfter?.Delta > TimeSpan.Zero);

        // Another email is not held back by this one.
        var other = await client.PostAsJsonAsync("/api/v1/auth/login", new { email = Accounts.NewEmail(), password = "wrong password" }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegistrationsFromOneAddressAreRateLimited(StoreProvider provider)
    {
        await using var api = await StartAsync(provider, ("Auth:RateLimits:PerClientAddress", "2"));
        using var client = api.CreateClient();

        await client.RegisterAsync();
        await client.RegisterAsync();
        var third = await client.PostAsJsonAsync("/api/v1/auth/register", new { email = Accounts.NewEmail(), password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(third, HttpStatusCode.TooManyRequests, "over_request_rate_limit");
        Assert.NotNull(third.Headers.RetryAfter);
        Assert.Equal(2, await CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheSigningKeySurvivesARestartAndIsPublished(StoreProvider provider)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-restart-{Guid.NewGuid():N}");
        var database = provider == StoreProvider.Postgres ? await postgres.CreateDatabaseAsync() : null;
        TokenPair pair;
        await using (var first = new ApiFactory(dataDirectory) { DeleteDataOnDispose = false }.OnStore(database))
        {
            pair = await first.CreateClient().RegisterAsync();
        }

        await using var second = new ApiFactory(dataDirectory).OnStore(database);
        using var client = second.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);

        var jwks = await client.GetFromJsonAsync<JsonElement>("/.well-known/jwks.json", TestContext.Current.CancellationToken);
        var key = Assert.Single(jwks.GetProperty("keys").EnumerateArray());
        Assert.Equal("EC", key.GetProperty("kty").GetString());
        Assert.Equal("ES256", key.GetProperty("alg").GetString());
        Assert.False(key.TryGetProperty("d", out _), "the private part is never published");
        var validation = await new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().ValidateTokenAsync(pair.AccessToken, new Microsoft.IdentityModel.Tokens.TokenValidationParameters
        {
            ValidIssuer = "aichat",
            ValidAudience = "aichat-api",
            IssuerSigningKeys = new Microsoft.IdentityModel.Tokens.JsonWebKeySet(jwks.GetRawText()).GetSigningKeys(),
        });
        Assert.True(validation.IsValid, validation.Exception?.Message);
    }

    internal static Task<HttpResponseMessage> RefreshAsync(HttpClient client, string refreshToken) =>
        client.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = refreshToken }, TestContext.Current.CancellationToken);

    internal static async Task<long> CountAsync(ApiFactory api, string sql)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        return await connection.ExecuteScalarAsync<long>(sql);
    }

    private async Task<ApiFactory> StartAsync(StoreProvider provider, params (string Key, string Value)[] settings)
    {
        var api = new ApiFactory();
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        foreach (var (key, value) in settings)
        {
            api.WithSetting(key, value);
        }

        return api;
    }

    private static string? Detail(string problem) => JsonDocument.Parse(problem).RootElement.GetProperty("detail").GetString();
}
