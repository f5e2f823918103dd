using System.Net;
using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Auth;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Tests.Auth;

/// <summary>Every forged, stale or misdirected access token is refused with 401 by the built-in provider.</summary>
[Trait("Category", "Auth")]
public sealed class TokenAttackTests(PostgresServer postgres, ApisPerStore apis) : IClassFixture<ApisPerStore>, IDisposable
{
    private ApiFactory _api = null!;
    private HttpClient _client = null!;
    private TokenPair _victim = null!;

    public static TheoryData<StoreProvider, string> Attacks => TestStore.OnEachProvider(
    [
        "alg none", "signed by another key", "HS256 with the public key as secret", "expired", "not yet valid",
        "wrong issuer", "wrong audience", "payload edited after signing", "no expiry", "unknown session", "garbage",
    ]);

    public void Dispose() => _client?.Dispose();

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheGenuineTokenIsAccepted(StoreProvider provider)
    {
        await StartAsync(provider);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetWithTokenAsync("/api/v1/auth/me", _victim.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetWithTokenAsync("/api/v1/auth/me", Forge(new()))).StatusCode);
    }

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task AForgedOrStaleTokenIsRejected(StoreProvider provider, string attack)
    {
        await StartAsync(provider);
        var token = attack switch
        {
            "alg none" => Unsigned(),
            "signed by another key" => Forge(new() { Key = new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = Keys.Public.KeyId } }),
            "HS256 with the public key as secret" => HmacWithPublicKey(),
            "expired" => Forge(new() { NotBefore = DateTime.UtcNow.AddHours(-2), Expires = DateTime.UtcNow.AddMinutes(-5) }),
            "not yet valid" => Forge(new() { NotBefore = DateTime.UtcNow.AddMinutes(10), Expires = DateTime.UtcNow.AddMinutes(20) }),
            "wrong issuer" => Forge(new() { Issuer = "https://evil.example.com" }),
            "wrong audience" => Forge(new() { Audience = "another-api" }),
            "payload edited after signing" => EditPayload(_victim.AccessToken),
            "no expiry" => Forge(new() { NoExpiry = true }),
            "unknown session" => Forge(new() { Session = Guid.NewGuid() }),
            "garbage" => "not.a.jwt",
            _ => throw new ArgumentOutOfRangeException(nameof(attack)),
        };

        var response = await _client.GetWithTokenAsync("/api/v1/auth/me", token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheTokenOfADeletedAccountIsRejected(StoreProvider provider)
    {
        await StartAsync(provider);
        var pair = await _client.RegisterAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await _client.GetWithTokenAsync("/api/v1/auth/me", pair.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await BuiltInAuthTests.RefreshAsync(_client, pair.RefreshToken)).StatusCode);
    }

    /// <summary>The class's API on the store, and a victim of this test's own.</summary>
    private async Task StartAsync(StoreProvider provider)
    {
        _api = await apis.GetAsync(provider, postgres, () => new ApiFactory());
        _client = _api.CreateClient();
        _victim = await _client.RegisterAsync();
    }

    private SigningKeys Keys => _api.Services.GetRequiredService<SigningKeys>();

    private string Forge(Forgery forgery)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object>
        {
            ["sub"] = _victim.UserId.ToString(),
            ["email"] = _victim.User.GetProperty("email").GetString()!,
            ["role"] = "admin",
            ["sid"] = (forgery.Session ?? SessionOf(_victim.AccessToken)).ToString(),
        };
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = forgery.Issuer ?? "aichat",
            Audience = forgery.Audience ?? "aichat-api",
            IssuedAt = forgery.NotBefore ?? now,
            NotBefore = forgery.NotBefore ?? now,
            Expires = forgery.NoExpiry ? null : forgery.Expires ?? now.AddMinutes(5),
            SigningCredentials = new SigningCredentials(forgery.Key ?? Keys.Private, SecurityAlgorithms.EcdsaSha256),
            Claims = claims,
        };
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = !forgery.NoExpiry };
        return LogSink.Secret(handler.CreateToken(descriptor));
    }

    private string Unsigned()
    {
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        var payload = Base64UrlEncoder.Encode($$"""{"sub":"{{_victim.UserId}}","iss":"aichat","aud":"aichat-api","exp":{{exp}},"sid":"{{SessionOf(_victim.AccessToken)}}","role":"admin"}""");
        return $"{header}.{payload}.";
    }

    // The classic confusion: sign with HMAC using the server's public key bytes as the shared secret.
    private string HmacWithPublicKey()
    {
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(Keys.Public);
        var secret = Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { jwk.Crv, jwk.Kty, jwk.X, jwk.Y }));
        var pem = Encoding.UTF8.GetBytes(Keys.Public.ECDsa.ExportSubjectPublicKeyInfoPem());
        var handler = new JsonWebTokenHandler();
        var claims = new Dictionary<string, object> { ["sub"] = _victim.UserId.ToString(), ["sid"] = SessionOf(_victim.AccessToken).ToString() };
        // Try both common encodings of "the public key" as the secret; neither may be accepted.
        return LogSink.Secret(handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "aichat",
            Audience = "aichat-api",
            Expires = DateTime.UtcNow.AddMinutes(5),
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(pem.Length >= 32 ? pem : secret) { KeyId = Keys.Public.KeyId }, SecurityAlgorithms.HmacSha256),
        }));
    }

    private static string EditPayload(string token)
    {
        var parts = token.Split('.');
        var payload = Base64UrlEncoder.Decode(parts[1]).Replace("\"role\":\"user\"", "\"role\":\"admin\"");
        Assert.Contains("\"role\":\"admin\"", payload);
        return $"{parts[0]}.{Base64UrlEncoder.Encode(payload)}.{parts[2]}";
    }

    private static Guid SessionOf(string token) => Guid.Parse(new JsonWebToken(token).GetClaim("sid").Value);

    private sealed record Forgery
    {
        public SecurityKey? Key { get; init; }

        public string? Issuer { get; init; }

        public string? Audience { get; init; }

        public DateTime? NotBefore { get; init; }

        public DateTime? Expires { get; init; }

        public bool NoExpiry { get; init; }

        public Guid? Session { get; init; }
    }
}
