using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Tests.Fakes;

public enum FakeSigning { ES256, RS256, HS256 }

/// <summary>
/// In-process contract fake of Supabase Auth (GoTrue) served by Kestrel on 127.0.0.1.
/// Covers signup, password and refresh_token grants, GET /user, logout and the JWKS endpoint.
/// </summary>
public sealed partial class FakeSupabaseAuth : IAsyncDisposable
{
    public const string Audience = "authenticated";
    public const int AccessTokenLifetimeSeconds = 3600;

    private const string Alphanumeric = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private const string LowerAlphanumeric = "abcdefghijklmnopqrstuvwxyz0123456789";

    private static readonly JsonWebTokenHandler TokenHandler = new() { SetDefaultTimesOnTokenCreation = false };

    private readonly object gate = new();
    private readonly WebApplication app;
    private readonly FakeSigning signing;
    private readonly bool confirmEmail;
    private readonly int? rateLimit;
    private readonly Dictionary<string, FakeUser> usersByEmail = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, FakeUser> usersById = [];
    private readonly Dictionary<Guid, FakeSession> sessions = [];
    private readonly Dictionary<string, RefreshEntry> refreshTokens = new(StringComparer.Ordinal);
    private readonly List<string> receivedApiKeys = [];
    private readonly List<IDisposable> keyMaterial = [];
    private SigningMaterial current;
    private int jwksRequests;
    private int authCalls;
    private int disposed;

    private FakeSupabaseAuth(FakeSigning signing, bool confirmEmail, int? rateLimit)
    {
        this.signing = signing;
        this.confirmEmail = confirmEmail;
        this.rateLimit = rateLimit;
        current = CreateSigningMaterial();
        AnonKey = signing == FakeSigning.HS256 ? CreateLegacyAnonKey(current) : "sb_publishable_" + RandomNumberGenerator.GetString(Alphanumeric, 32);
        app = BuildApp();
    }

    public Uri Url { get; private set; } = null!;

    public string Issuer { get; private set; } = "";

    public string AnonKey { get; }

    public string? JwtSecret
    {
        get { lock (gate) { return current.Secret; } }
    }

    public SecurityKey SigningKey
    {
        get { lock (gate) { return current.Key; } }
    }

    public int JwksRequests => Volatile.Read(ref jwksRequests);

    public IReadOnlyCollection<string> ReceivedApiKeys
    {
        get { lock (gate) { return receivedApiKeys.ToArray(); } }
    }

    public static async Task<FakeSupabaseAuth> StartAsync(FakeSigning signing = FakeSigning.ES256, bool confirmEmail = false, int? rateLimit = null)
    {
        if (!Enum.IsDefined(signing))
        {
            throw new ArgumentOutOfRangeException(nameof(signing));
        }

        if (rateLimit < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(rateLimit), "The rate limit must not be negative.");
        }

        var fake = new FakeSupabaseAuth(signing, confirmEmail, rateLimit);
        try
        {
            fake.Issuer = await FakeHost.StartOnLoopbackAsync(fake.app).ConfigureAwait(false) + "/auth/v1";
            fake.Url = new Uri(fake.Issuer);
            return fake;
        }
        catch
        {
            await fake.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public void Confirm(string email)
    {
        ArgumentNullException.ThrowIfNull(email);
        lock (gate)
        {
            if (!usersByEmail.TryGetValue(NormalizeEmail(email), out var user))
            {
                throw new InvalidOperationException($"No user is registered with the email '{email}'.");
            }

            var now = DateTimeOffset.UtcNow;
            user.ConfirmedAt ??= now;
            user.UpdatedAt = now;
        }
    }

    public void RotateSigningKey()
    {
        lock (gate)
        {
            current = CreateSigningMaterial();
        }
    }

    public string MintAccessToken(string userId, string email, TimeSpan? lifetime = null, DateTimeOffset? notBefore = null, string? issuer = null, string? audience = null)
    {
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentNullException.ThrowIfNull(email);
        var now = DateTimeOffset.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromSeconds(AccessTokenLifetimeSeconds));
        // An expired token still needs iat before exp to look like a genuinely stale token.
        var issuedAt = expires <= now ? expires - TimeSpan.FromSeconds(AccessTokenLifetimeSeconds) : now;
        lock (gate)
        {
            var metadata = Guid.TryParse(userId, out var id) && usersById.TryGetValue(id, out var user)
                ? (JsonObject)user.Metadata.DeepClone()
                : [];
            return CreateAccessToken(userId, email, metadata, Guid.NewGuid(), issuedAt, expires, notBefore, issuer ?? Issuer, audience ?? Audience);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await FakeHost.StopAsync(app).ConfigureAwait(false);
        }
        finally
        {
            lock (gate)
            {
                foreach (var key in keyMaterial)
                {
                    key.Dispose();
                }

                keyMaterial.Clear();
            }
        }
    }

    private WebApplication BuildApp()
    {
        var builder = FakeHost.CreateBuilder();

        var web = builder.Build();
        web.Use(CheckApiKeyAsync);

        var auth = web.MapGroup("/auth/v1");
        auth.MapPost("/signup", (RequestDelegate)SignupAsync);
        auth.MapPost("/token", (RequestDelegate)TokenAsync);
        auth.MapGet("/user", (RequestDelegate)GetUserAsync);
        auth.MapPost("/logout", (RequestDelegate)LogoutAsync);
        auth.MapGet("/.well-known/jwks.json", (RequestDelegate)JwksAsync);
        auth.MapGet("/.well-known/openid-configuration", (RequestDelegate)OpenIdConfigurationAsync);
        web.MapFallback((RequestDelegate)(ctx => WriteErrorAsync(ctx, StatusCodes.Status404NotFound, "not_found", "Not Found")));
        return web;
    }

    private async Task CheckApiKeyAsync(HttpContext ctx, RequestDelegate next)
    {
        var apiKey = ctx.Request.Headers["apikey"].ToString();
        if (apiKey.Length > 0)
        {
            lock (gate)
            {
                receivedApiKeys.Add(apiKey);
            }
        }

        // Supabase serves the discovery documents publicly so JWT libraries can fetch keys without an apikey.
        var isPublic = ctx.Request.Path.StartsWithSegments("/auth/v1/.well-known", StringComparison.Ordinal);
        if (!isPublic && apiKey.Length == 0)
        {
            await WriteErrorAsync(ctx, StatusCodes.Status401Unauthorized, "no_authorization", "No API key found in request").ConfigureAwait(false);
            return;
        }

        if (!isPublic && !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(apiKey), Encoding.UTF8.GetBytes(AnonKey)))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status401Unauthorized, "no_authorization", "Invalid API key").ConfigureAwait(false);
            return;
        }

        await next(ctx).ConfigureAwait(false);
    }

    private async Task SignupAsync(HttpContext ctx)
    {
        if (!TryConsumeRateLimit())
        {
            await WriteRateLimitedAsync(ctx).ConfigureAwait(false);
            return;
        }

        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        if (body is null)
        {
            await WriteBadJsonAsync(ctx).ConfigureAwait(false);
            return;
        }

        var rawEmail = GetString(body, "email")?.Trim();
        var password = GetString(body, "password");
        if (string.IsNullOrEmpty(rawEmail))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "validation_failed", "To signup, please provide your email").ConfigureAwait(false);
            return;
        }

        if (!EmailPattern().IsMatch(rawEmail))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "validation_failed", "Unable to validate email address: invalid format").ConfigureAwait(false);
            return;
        }

        if (string.IsNullOrEmpty(password))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "validation_failed", "Signup requires a valid password").ConfigureAwait(false);
            return;
        }

        if (password.Length < 6)
        {
            var extra = new JsonObject { ["weak_password"] = new JsonObject { ["reasons"] = new JsonArray("length") } };
            await WriteErrorAsync(ctx, StatusCodes.Status422UnprocessableEntity, "weak_password", "Password should be at least 6 characters.", extra).ConfigureAwait(false);
            return;
        }

        var metadata = body["data"] is JsonObject data ? (JsonObject)data.DeepClone() : [];
        var (status, payload) = Register(NormalizeEmail(rawEmail), password, metadata);
        await WritePayloadAsync(ctx, status, payload).ConfigureAwait(false);
    }

    private (int Status, JsonObject Payload) Register(string email, string password, JsonObject metadata)
    {
        var now = DateTimeOffset.UtcNow;
        lock (gate)
        {
            if (usersByEmail.ContainsKey(email))
            {
                if (!confirmEmail)
                {
                    return (StatusCodes.Status422UnprocessableEntity, ErrorBody(StatusCodes.Status422UnprocessableEntity, "user_already_exists", "User already registered"));
                }

                // GoTrue's anti-enumeration answer: a look-alike user that owns nothing.
                var decoy = new FakeUser(Guid.NewGuid(), email, password, metadata, now) { ConfirmationSentAt = now };
                return (StatusCodes.Status200OK, UserJson(decoy, includeIdentities: false));
            }

            var user = new FakeUser(Guid.NewGuid(), email, password, metadata, now);
            usersByEmail[email] = user;
            usersById[user.Id] = user;
            if (confirmEmail)
            {
                user.ConfirmationSentAt = now;
                return (StatusCodes.Status200OK, UserJson(user, includeIdentities: true));
            }

            user.ConfirmedAt = now;
            return (StatusCodes.Status200OK, OpenSession(user, now));
        }
    }

    private async Task TokenAsync(HttpContext ctx)
    {
        if (!TryConsumeRateLimit())
        {
            await WriteRateLimitedAsync(ctx).ConfigureAwait(false);
            return;
        }

        var grantType = ctx.Request.Query["grant_type"].ToString();
        if (grantType is not ("password" or "refresh_token"))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "validation_failed", "unsupported_grant_type").ConfigureAwait(false);
            return;
        }

        var body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        if (body is null)
        {
            await WriteBadJsonAsync(ctx).ConfigureAwait(false);
            return;
        }

        var (status, payload) = grantType == "password" ? PasswordGrant(body) : RefreshGrant(body);
        await WritePayloadAsync(ctx, status, payload).ConfigureAwait(false);
    }

    private (int Status, JsonObject Payload) PasswordGrant(JsonObject body)
    {
        var email = GetString(body, "email");
        var password = GetString(body, "password") ?? "";
        if (string.IsNullOrWhiteSpace(email))
        {
            return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "validation_failed", "An email address or phone number is required to sign in"));
        }

        lock (gate)
        {
            if (!usersByEmail.TryGetValue(NormalizeEmail(email), out var user)
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(password), Encoding.UTF8.GetBytes(user.Password)))
            {
                return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "invalid_credentials", "Invalid login credentials"));
            }

            if (user.ConfirmedAt is null)
            {
                return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "email_not_confirmed", "Email not confirmed"));
            }

            return (StatusCodes.Status200OK, OpenSession(user, DateTimeOffset.UtcNow));
        }
    }

    private (int Status, JsonObject Payload) RefreshGrant(JsonObject body)
    {
        var token = GetString(body, "refresh_token");
        if (string.IsNullOrEmpty(token))
        {
            return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "validation_failed", "refresh_token required"));
        }

        lock (gate)
        {
            if (!refreshTokens.TryGetValue(token, out var entry)
                || !sessions.TryGetValue(entry.SessionId, out var session)
                || !usersById.TryGetValue(session.UserId, out var user))
            {
                return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"));
            }

            if (entry.Revoked)
            {
                // Reuse of a rotated token is treated as theft: the whole token family of the session dies.
                foreach (var sibling in session.RefreshTokens)
                {
                    refreshTokens[sibling].Revoked = true;
                }

                return (StatusCodes.Status400BadRequest, ErrorBody(StatusCodes.Status400BadRequest, "refresh_token_already_used", "Invalid Refresh Token: Already Used"));
            }

            entry.Revoked = true;
            return (StatusCodes.Status200OK, SessionJson(user, session, IssueRefreshToken(session), DateTimeOffset.UtcNow));
        }
    }

    private async Task GetUserAsync(HttpContext ctx)
    {
        var caller = await AuthenticateAsync(ctx).ConfigureAwait(false);
        if (caller is null)
        {
            return;
        }

        JsonObject user;
        lock (gate)
        {
            user = UserJson(caller.Value.User, includeIdentities: true);
        }

        await WriteJsonAsync(ctx, StatusCodes.Status200OK, user).ConfigureAwait(false);
    }

    private async Task LogoutAsync(HttpContext ctx)
    {
        var scope = ctx.Request.Query["scope"].ToString();
        if (scope.Length == 0)
        {
            scope = "local";
        }

        if (scope is not ("local" or "global" or "others"))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "validation_failed", $"Unsupported logout scope \"{scope}\"").ConfigureAwait(false);
            return;
        }

        var caller = await AuthenticateAsync(ctx).ConfigureAwait(false);
        if (caller is null)
        {
            return;
        }

        var (user, sessionId) = caller.Value;
        lock (gate)
        {
            var doomed = sessions.Values
                .Where(s => s.UserId == user.Id && scope switch
                {
                    "local" => s.Id == sessionId,
                    "others" => s.Id != sessionId,
                    _ => true,
                })
                .ToList();
            foreach (var session in doomed)
            {
                sessions.Remove(session.Id);
                foreach (var token in session.RefreshTokens)
                {
                    refreshTokens.Remove(token);
                }
            }
        }

        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private async Task JwksAsync(HttpContext ctx)
    {
        Interlocked.Increment(ref jwksRequests);
        JsonArray keys;
        lock (gate)
        {
            keys = current.Jwk is null ? [] : [current.Jwk.DeepClone()];
        }

        await WriteJsonAsync(ctx, StatusCodes.Status200OK, new JsonObject { ["keys"] = keys }).ConfigureAwait(false);
    }

    private async Task OpenIdConfigurationAsync(HttpContext ctx)
    {
        var document = new JsonObject
        {
            ["issuer"] = Issuer,
            ["jwks_uri"] = Issuer + "/.well-known/jwks.json",
            ["token_endpoint"] = Issuer + "/token",
            ["response_types_supported"] = new JsonArray("code"),
            ["subject_types_supported"] = new JsonArray("public"),
            ["id_token_signing_alg_values_supported"] = new JsonArray(AlgorithmName),
        };
        await WriteJsonAsync(ctx, StatusCodes.Status200OK, document).ConfigureAwait(false);
    }

    private async Task<(FakeUser User, Guid? SessionId)?> AuthenticateAsync(HttpContext ctx)
    {
        var match = BearerPattern().Match(ctx.Request.Headers.Authorization.ToString());
        if (!match.Success)
        {
            await WriteErrorAsync(ctx, StatusCodes.Status401Unauthorized, "no_authorization", "This endpoint requires a valid Bearer token").ConfigureAwait(false);
            return null;
        }

        SigningMaterial material;
        lock (gate)
        {
            material = current;
        }

        var result = await TokenHandler.ValidateTokenAsync(match.Groups[1].Value, new TokenValidationParameters
        {
            IssuerSigningKey = material.Key,
            ValidAlgorithms = [AlgorithmName],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.Zero,
        }).ConfigureAwait(false);
        if (!result.IsValid)
        {
            var reason = result.Exception switch
            {
                SecurityTokenExpiredException => "token has invalid claims: token is expired",
                SecurityTokenNotYetValidException => "token has invalid claims: token is not valid yet",
                SecurityTokenMalformedException => "token is malformed: could not base64 decode",
                _ => "token signature is invalid: signature is invalid",
            };
            await WriteErrorAsync(ctx, StatusCodes.Status403Forbidden, "bad_jwt", "invalid JWT: unable to parse or verify signature, " + reason).ConfigureAwait(false);
            return null;
        }

        var claims = result.Claims;
        if (!claims.TryGetValue("sub", out var subject) || subject is not string sub || sub.Length == 0)
        {
            await WriteErrorAsync(ctx, StatusCodes.Status403Forbidden, "bad_jwt", "invalid claim: missing sub claim").ConfigureAwait(false);
            return null;
        }

        if (!Guid.TryParse(sub, out var userId))
        {
            await WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "bad_jwt", "invalid claim: sub claim must be a UUID").ConfigureAwait(false);
            return null;
        }

        Guid? sessionId = null;
        if (claims.TryGetValue("session_id", out var sid) && sid is string sidText && sidText.Length > 0)
        {
            if (!Guid.TryParse(sidText, out var parsed))
            {
                await WriteErrorAsync(ctx, StatusCodes.Status403Forbidden, "bad_jwt", "invalid claim: session_id claim must be a UUID").ConfigureAwait(false);
                return null;
            }

            sessionId = parsed == Guid.Empty ? null : parsed;
        }

        FakeUser? user;
        bool sessionExists;
        lock (gate)
        {
            usersById.TryGetValue(userId, out user);
            sessionExists = sessionId is null || sessions.ContainsKey(sessionId.Value);
        }

        if (user is null)
        {
            await WriteErrorAsync(ctx, StatusCodes.Status403Forbidden, "user_not_found", "User from sub claim in JWT does not exist").ConfigureAwait(false);
            return null;
        }

        if (!sessionExists)
        {
            await WriteErrorAsync(ctx, StatusCodes.Status403Forbidden, "session_not_found", "Session from session_id claim in JWT does not exist").ConfigureAwait(false);
            return null;
        }

        return (user, sessionId);
    }

    private bool TryConsumeRateLimit() => rateLimit is not { } limit || Interlocked.Increment(ref authCalls) <= limit;

    private JsonObject OpenSession(FakeUser user, DateTimeOffset now)
    {
        var session = new FakeSession(Guid.NewGuid(), user.Id);
        sessions[session.Id] = session;
        user.LastSignInAt = now;
        return SessionJson(user, session, IssueRefreshToken(session), now);
    }

    private string IssueRefreshToken(FakeSession session)
    {
        var token = RandomNumberGenerator.GetString(LowerAlphanumeric, 12);
        refreshTokens[token] = new RefreshEntry(session.Id);
        session.RefreshTokens.Add(token);
        return token;
    }

    private JsonObject SessionJson(FakeUser user, FakeSession session, string refreshToken, DateTimeOffset now)
    {
        var expires = now.AddSeconds(AccessTokenLifetimeSeconds);
        var metadata = (JsonObject)user.Metadata.DeepClone();
        return new JsonObject
        {
            ["access_token"] = CreateAccessToken(user.Id.ToString(), user.Email, metadata, session.Id, now, expires, null, Issuer, Audience),
            ["token_type"] = "bearer",
            ["expires_in"] = AccessTokenLifetimeSeconds,
            ["expires_at"] = expires.ToUnixTimeSeconds(),
            ["refresh_token"] = refreshToken,
            ["user"] = UserJson(user, includeIdentities: true),
        };
    }

    private string CreateAccessToken(string userId, string email, JsonObject userMetadata, Guid sessionId, DateTimeOffset issuedAt, DateTimeOffset expires, DateTimeOffset? notBefore, string issuer, string audience)
    {
        var claims = new Dictionary<string, object>
        {
            ["iss"] = issuer,
            ["sub"] = userId,
            ["aud"] = audience,
            ["exp"] = expires.ToUnixTimeSeconds(),
            ["iat"] = issuedAt.ToUnixTimeSeconds(),
            ["email"] = email,
            ["phone"] = "",
            ["app_metadata"] = JsonSerializer.SerializeToElement(new JsonObject { ["provider"] = "email", ["providers"] = new JsonArray("email") }),
            ["user_metadata"] = JsonSerializer.SerializeToElement(userMetadata),
            ["role"] = "authenticated",
            ["aal"] = "aal1",
            ["amr"] = JsonSerializer.SerializeToElement(new JsonArray(new JsonObject { ["method"] = "password", ["timestamp"] = issuedAt.ToUnixTimeSeconds() })),
            ["session_id"] = sessionId.ToString(),
            ["is_anonymous"] = false,
        };
        if (notBefore is { } nbf)
        {
            claims["nbf"] = nbf.ToUnixTimeSeconds();
        }

        return TokenHandler.CreateToken(new SecurityTokenDescriptor { Claims = claims, SigningCredentials = current.Credentials });
    }

    private static JsonObject UserJson(FakeUser user, bool includeIdentities)
    {
        var json = new JsonObject
        {
            ["id"] = user.Id.ToString(),
            ["aud"] = Audience,
            ["role"] = "authenticated",
            ["email"] = user.Email,
        };
        if (user.ConfirmedAt is { } confirmed)
        {
            json["email_confirmed_at"] = Iso(confirmed);
        }

        json["phone"] = "";
        if (user.ConfirmationSentAt is { } sent)
        {
            json["confirmation_sent_at"] = Iso(sent);
        }

        if (user.ConfirmedAt is { } confirmedAt)
        {
            json["confirmed_at"] = Iso(confirmedAt);
        }

        if (user.LastSignInAt is { } lastSignIn)
        {
            json["last_sign_in_at"] = Iso(lastSignIn);
        }

        json["app_metadata"] = new JsonObject { ["provider"] = "email", ["providers"] = new JsonArray("email") };
        json["user_metadata"] = user.Metadata.DeepClone();
        json["identities"] = includeIdentities
            ? new JsonArray(new JsonObject
            {
                ["identity_id"] = user.IdentityId.ToString(),
                ["id"] = user.Id.ToString(),
                ["user_id"] = user.Id.ToString(),
                ["identity_data"] = new JsonObject
                {
                    ["email"] = user.Email,
                    ["email_verified"] = user.ConfirmedAt is not null,
                    ["phone_verified"] = false,
                    ["sub"] = user.Id.ToString(),
                },
                ["provider"] = "email",
                ["created_at"] = Iso(user.CreatedAt),
                ["updated_at"] = Iso(user.UpdatedAt),
                ["email"] = user.Email,
            })
            : [];
        json["created_at"] = Iso(user.CreatedAt);
        json["updated_at"] = Iso(user.UpdatedAt);
        json["is_anonymous"] = false;
        return json;
    }

    private string AlgorithmName => signing switch
    {
        FakeSigning.ES256 => SecurityAlgorithms.EcdsaSha256,
        FakeSigning.RS256 => SecurityAlgorithms.RsaSha256,
        _ => SecurityAlgorithms.HmacSha256,
    };

    private SigningMaterial CreateSigningMaterial()
    {
        var kid = Guid.NewGuid().ToString();
        switch (signing)
        {
            case FakeSigning.ES256:
            {
                var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                keyMaterial.Add(ecdsa);
                var point = ecdsa.ExportParameters(includePrivateParameters: false).Q;
                var key = new ECDsaSecurityKey(ecdsa) { KeyId = kid };
                var jwk = new JsonObject
                {
                    ["kty"] = "EC",
                    ["crv"] = "P-256",
                    ["x"] = Base64UrlEncoder.Encode(point.X),
                    ["y"] = Base64UrlEncoder.Encode(point.Y),
                    ["kid"] = kid,
                    ["alg"] = "ES256",
                    ["use"] = "sig",
                    ["key_ops"] = new JsonArray("verify"),
                    ["ext"] = true,
                };
                return new SigningMaterial(key, new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256), jwk, null);
            }

            case FakeSigning.RS256:
            {
                var rsa = RSA.Create(2048);
                keyMaterial.Add(rsa);
                var parameters = rsa.ExportParameters(includePrivateParameters: false);
                var key = new RsaSecurityKey(rsa) { KeyId = kid };
                var jwk = new JsonObject
                {
                    ["kty"] = "RSA",
                    ["n"] = Base64UrlEncoder.Encode(parameters.Modulus),
                    ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
                    ["kid"] = kid,
                    ["alg"] = "RS256",
                    ["use"] = "sig",
                    ["key_ops"] = new JsonArray("verify"),
                    ["ext"] = true,
                };
                return new SigningMaterial(key, new SigningCredentials(key, SecurityAlgorithms.RsaSha256), jwk, null);
            }

            default:
            {
                var secret = RandomNumberGenerator.GetString(Alphanumeric, 40);
                var key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret));
                return new SigningMaterial(key, new SigningCredentials(key, SecurityAlgorithms.HmacSha256), null, secret);
            }
        }
    }

    private static string CreateLegacyAnonKey(SigningMaterial material)
    {
        var now = DateTimeOffset.UtcNow;
        return TokenHandler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object>
            {
                ["iss"] = "supabase",
                ["ref"] = "fake",
                ["role"] = "anon",
                ["iat"] = now.ToUnixTimeSeconds(),
                ["exp"] = now.AddYears(10).ToUnixTimeSeconds(),
            },
            SigningCredentials = material.Credentials,
        });
    }

    private static async Task<JsonObject?> ReadBodyAsync(HttpContext ctx)
    {
        try
        {
            return await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted).ConfigureAwait(false) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? GetString(JsonObject body, string name) =>
        body[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static string NormalizeEmail(string email) => email.Trim().ToLowerInvariant();

    private static string Iso(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static JsonObject ErrorBody(int status, string errorCode, string message) =>
        new() { ["code"] = status, ["error_code"] = errorCode, ["msg"] = message };

    private static Task WriteBadJsonAsync(HttpContext ctx) =>
        WriteErrorAsync(ctx, StatusCodes.Status400BadRequest, "bad_json", "Could not parse request body as JSON");

    private static Task WriteRateLimitedAsync(HttpContext ctx) =>
        WriteErrorAsync(ctx, StatusCodes.Status429TooManyRequests, "over_request_rate_limit", "Request rate limit reached");

    private static Task WriteErrorAsync(HttpContext ctx, int status, string errorCode, string message, JsonObject? extra = null)
    {
        var body = ErrorBody(status, errorCode, message);
        foreach (var (name, value) in extra ?? [])
        {
            body[name] = value?.DeepClone();
        }

        ctx.Response.Headers["x-sb-error-code"] = errorCode;
        return WriteJsonAsync(ctx, status, body);
    }

    private static Task WritePayloadAsync(HttpContext ctx, int status, JsonObject payload)
    {
        if (payload["error_code"] is JsonValue code)
        {
            ctx.Response.Headers["x-sb-error-code"] = code.GetValue<string>();
        }

        return WriteJsonAsync(ctx, status, payload);
    }

    private static Task WriteJsonAsync(HttpContext ctx, int status, JsonNode body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    [GeneratedRegex(@"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    private static partial Regex EmailPattern();

    [GeneratedRegex(@"^\s*bearer\s+(\S+)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex BearerPattern();

    private sealed record SigningMaterial(SecurityKey Key, SigningCredentials Credentials, JsonObject? Jwk, string? Secret);

    private sealed class FakeUser(Guid id, string email, string password, JsonObject metadata, DateTimeOffset createdAt)
    {
        public Guid Id { get; } = id;
        public Guid IdentityId { get; } = Guid.NewGuid();
        public string Email { get; } = email;
        public string Password { get; } = password;
        public JsonObject Metadata { get; } = metadata;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public DateTimeOffset UpdatedAt { get; set; } = createdAt;
        public DateTimeOffset? ConfirmedAt { get; set; }
        public DateTimeOffset? ConfirmationSentAt { get; set; }
        public DateTimeOffset? LastSignInAt { get; set; }
    }

    private sealed class FakeSession(Guid id, Guid userId)
    {
        public Guid Id { get; } = id;
        public Guid UserId { get; } = userId;
        public List<string> RefreshTokens { get; } = [];
    }

    private sealed class RefreshEntry(Guid sessionId)
    {
        public Guid SessionId { get; } = sessionId;
        public bool Revoked { get; set; }
    }
}
