using AiChat.Api.Data;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiChat.Api.Auth;
using AiChat.Tests.Api;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Tests.Auth;

/// <summary>The Supabase provider end to end against a GoTrue contract fake (ES256/RS256 via JWKS, and legacy HS256).</summary>
[Trait("Category", "Auth")]
public sealed class SupabaseAuthTests(PostgresServer postgres)
{
    public static TheoryData<StoreProvider, FakeSigning> Signings()
    {
        var data = new TheoryData<StoreProvider, FakeSigning>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            foreach (var signing in new[] { FakeSigning.ES256, FakeSigning.RS256, FakeSigning.HS256 })
            {
                data.Add(provider, signing);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Signings))]
    public async Task RegisterLoginRefreshAndLogoutGoThroughSupabase(StoreProvider provider, FakeSigning signing)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync(signing);
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail("ana");
        var password = Accounts.NewPassword();

        var registered = await client.RegisterAsync(email, password, "Ana");
        Assert.Equal("Ana", registered.User.GetProperty("name").GetString());
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, $"SELECT COUNT(*) FROM users WHERE external_id = '{registered.UserId}'"));

        var me = await (await client.GetWithTokenAsync("/api/v1/auth/me", registered.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(registered.UserId, me.GetProperty("id").GetGuid());
        Assert.Equal("supabase", me.GetProperty("identity_provider").GetString());
        Assert.Equal("user", me.GetProperty("role").GetString());

        var loggedIn = await client.LoginAsync(email, password);
        var refreshed = await Accounts.ReadPairAsync(await BuiltInAuthTests.RefreshAsync(client, loggedIn.RefreshToken));
        Assert.NotEqual(loggedIn.RefreshToken, refreshed.RefreshToken);
        await ApiPipelineTests.AssertProblemAsync(await BuiltInAuthTests.RefreshAsync(client, loggedIn.RefreshToken), HttpStatusCode.Unauthorized, "invalid_refresh_token");

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/auth/logout", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await BuiltInAuthTests.RefreshAsync(client, refreshed.RefreshToken)).StatusCode);

        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
        Assert.All(supabase.ReceivedApiKeys, key => Assert.Equal(supabase.AnonKey, key));
        Assert.NotEmpty(supabase.ReceivedApiKeys);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheFirstAuthenticatedRequestOfAnUnknownSupabaseUserCreatesTheProfile(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync();
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var userId = Guid.NewGuid();
        var token = LogSink.Secret(supabase.MintAccessToken(userId.ToString(), "first@example.com"));

        var profile = await client.GetWithTokenAsync("/api/v1/user/profile", token);

        Assert.Equal(HttpStatusCode.OK, profile.StatusCode);
        Assert.Equal(userId, (await profile.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("id").GetGuid());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/user/profile", token)).StatusCode);
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task SupabaseRefusalsBecomeOurProblemCodes(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync();
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        var password = Accounts.NewPassword();

        var weak = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password = "abc12" }, TestContext.Current.CancellationToken);
        var weakBody = await ApiPipelineTests.AssertProblemAsync(weak, HttpStatusCode.UnprocessableEntity, "weak_password");
        Assert.Equal(["length"], JsonDocument.Parse(weakBody).RootElement.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));

        await client.RegisterAsync(email, password);
        var duplicate = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password }, TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(duplicate, HttpStatusCode.Conflict, "user_already_exists");

        var wrong = await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password = "wrong-password" }, TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(wrong, HttpStatusCode.Unauthorized, "invalid_credentials");

        var malformed = await client.PostAsJsonAsync("/api/v1/auth/register", new { email = "nope", password }, TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(malformed, HttpStatusCode.UnprocessableEntity, "validation_failed");
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WithEmailConfirmationRegistrationIsAcceptedAndLoginWaitsForTheConfirmation(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync(confirmEmail: true);
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        var password = Accounts.NewPassword();

        var registered = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password, name = "Ana" }, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Accepted, registered.StatusCode);
        var body = await registered.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(body.GetProperty("confirmation_required").GetBoolean());
        Assert.Equal(email, body.GetProperty("user").GetProperty("email").GetString());
        Assert.False(body.TryGetProperty("access_token", out _));
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));

        var early = await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password }, TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(early, HttpStatusCode.Forbidden, "email_not_confirmed");

        supabase.Confirm(email);
        var session = await client.LoginAsync(email, password);
        Assert.Equal(body.GetProperty("user").GetProperty("id").GetGuid(), session.UserId);
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task SupabasesRateLimitIsATooManyRequestsProblem(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync(rateLimit: 1);
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();

        await client.RegisterAsync();
        var limited = await client.PostAsJsonAsync("/api/v1/auth/register", new { email = Accounts.NewEmail(), password = Accounts.NewPassword() }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(limited, HttpStatusCode.TooManyRequests, "over_request_rate_limit");
        Assert.NotNull(limited.Headers.RetryAfter);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ARotatedSigningKeyIsFetchedWhenATokenNamesIt(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync();
        var clock = new ShiftedClock();
        await using var api = await ApiFor(supabase).WithServices(services => services.AddSingleton(sp => new SupabaseJwks(
            sp, sp.GetRequiredService<IOptions<SupabaseOptions>>(), clock, sp.GetRequiredService<ILogger<SupabaseJwks>>()))).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);
        var fetchesBefore = supabase.JwksRequests;

        // Cached: no fetch per request.
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);
        Assert.Equal(fetchesBefore, supabase.JwksRequests);

        supabase.RotateSigningKey();
        var fresh = LogSink.Secret(supabase.MintAccessToken(pair.UserId.ToString(), pair.User.GetProperty("email").GetString()!));

        // Within the minimum interval between refetches an unknown key id fetches nothing (a flood of forged ids cannot
        // hammer Supabase); once it has passed, the first token naming the new key fetches it once.
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/auth/me", fresh)).StatusCode);
        Assert.Equal(fetchesBefore, supabase.JwksRequests);
        clock.Advance(TimeSpan.FromSeconds(5.5));
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", fresh)).StatusCode);
        Assert.Equal(fetchesBefore + 1, supabase.JwksRequests);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", fresh)).StatusCode);
        Assert.Equal(fetchesBefore + 1, supabase.JwksRequests);
    }

    public static TheoryData<StoreProvider, FakeSigning, string> Attacks()
    {
        var data = new TheoryData<StoreProvider, FakeSigning, string>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            foreach (var (signing, attack) in AttackList)
            {
                data.Add(provider, signing, attack);
            }
        }

        return data;
    }

    private static readonly (FakeSigning Signing, string Attack)[] AttackList =
    [
        (FakeSigning.ES256, "alg none"),
        (FakeSigning.ES256, "signed by another key"),
        (FakeSigning.ES256, "HS256 with the anon key as secret"),
        (FakeSigning.ES256, "expired"),
        (FakeSigning.ES256, "not yet valid"),
        (FakeSigning.ES256, "wrong issuer"),
        (FakeSigning.ES256, "wrong audience"),
        (FakeSigning.ES256, "payload edited after signing"),
        (FakeSigning.HS256, "signed by another key"),
        (FakeSigning.HS256, "alg none"),
        (FakeSigning.HS256, "expired"),
        (FakeSigning.HS256, "wrong issuer"),
        (FakeSigning.HS256, "payload edited after signing"),
    ];

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task AForgedOrStaleSupabaseTokenIsRejected(StoreProvider provider, FakeSigning signing, string attack)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync(signing);
        await using var api = await ApiFor(supabase).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var victim = await client.RegisterAsync();
        var email = victim.User.GetProperty("email").GetString()!;
        var id = victim.UserId.ToString();

        var token = attack switch
        {
            "alg none" => $"{Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""")}.{new JsonWebToken(victim.AccessToken).EncodedPayload}.",
            "signed by another key" => SignWith(signing == FakeSigning.HS256
                ? new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256)
                : new SigningCredentials(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = supabase.SigningKey.KeyId }, SecurityAlgorithms.EcdsaSha256), supabase, id, email),
            "HS256 with the anon key as secret" => SignWith(new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(supabase.AnonKey.PadRight(32, '0'))), SecurityAlgorithms.HmacSha256), supabase, id, email),
            "expired" => supabase.MintAccessToken(id, email, lifetime: TimeSpan.FromMinutes(-5)),
            "not yet valid" => supabase.MintAccessToken(id, email, lifetime: TimeSpan.FromHours(1), notBefore: DateTimeOffset.UtcNow.AddMinutes(10)),
            "wrong issuer" => supabase.MintAccessToken(id, email, issuer: "https://evil.supabase.co/auth/v1"),
            "wrong audience" => supabase.MintAccessToken(id, email, audience: "anon"),
            "payload edited after signing" => EditPayload(victim.AccessToken),
            _ => throw new ArgumentOutOfRangeException(nameof(attack)),
        };

        var response = await client.GetWithTokenAsync("/api/v1/auth/me", LogSink.Secret(token));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    /// <summary>The system clock moved on by hand: what the JWKS cache sees as "now", its timers untouched.</summary>
    private sealed class ShiftedClock : TimeProvider
    {
        private TimeSpan _shift;

        public void Advance(TimeSpan by) => _shift += by;

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + _shift;
    }

    private static ApiFactory ApiFor(FakeSupabaseAuth supabase)
    {
        LogSink.Secret(supabase.AnonKey);
        if (supabase.JwtSecret is { } secret)
        {
            LogSink.Secret(secret);
        }

        var api = new ApiFactory()
            .WithSetting("Supabase:Url", supabase.Url.ToString()[..^"/auth/v1".Length])
            .WithSetting("Supabase:AnonKey", supabase.AnonKey);
        return supabase.JwtSecret is null ? api : api.WithSetting("Supabase:JwtSecret", supabase.JwtSecret);
    }

    private static string SignWith(SigningCredentials credentials, FakeSupabaseAuth supabase, string userId, string email) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = supabase.Issuer,
            Audience = FakeSupabaseAuth.Audience,
            Expires = DateTime.UtcNow.AddMinutes(10),
            Claims = new Dictionary<string, object> { ["sub"] = userId, ["email"] = email, ["role"] = "authenticated" },
            SigningCredentials = credentials,
        });

    private static string EditPayload(string token)
    {
        var parts = token.Split('.');
        var payload = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Base64UrlEncoder.Decode(parts[1]))!;
        payload["email"] = JsonSerializer.SerializeToElement("admin@example.com");
        return $"{parts[0]}.{Base64UrlEncoder.Encode(JsonSerializer.Serialize(payload))}.{parts[2]}";
    }
}
