using System.Security.Claims;
using AiChat.Api.Infrastructure;
using AiChat.Api.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Auth;

/// <summary>
/// Accounts in AiChat's own store: passwords hashed by ASP.NET Core Identity's <see cref="PasswordHasher{TUser}"/> (PBKDF2),
/// short-lived ES256 access tokens, and rotating refresh tokens bound to a session.
/// </summary>
public sealed class BuiltInIdentityProvider(
    UserStore users,
    SessionStore sessions,
    SigningKeys keys,
    LocalAccounts accounts,
    IOptions<AuthOptions> options,
    TimeProvider time) : IIdentityProvider
{
    public const int MinPasswordLength = 8;
    public const int MaxPasswordLength = 72;

    private static readonly PasswordHasher<UserAccount> Hasher = new();

    // Verifying against this when the email is unknown makes a wrong email cost as much time as a wrong password.
    private static readonly string DummyHash = Hasher.HashPassword(null!, "not-a-real-password-" + Guid.NewGuid());

    private readonly JsonWebTokenHandler _tokens = new();

    public string Name => "builtin";

    public string? CheckPassword(string password) => password.Length switch
    {
        < MinPasswordLength => $"The password must have at least {MinPasswordLength} characters.",
        > MaxPasswordLength => $"The password must have at most {MaxPasswordLength} characters.",
        _ when string.IsNullOrWhiteSpace(password) => "The password must not be blank.",
        _ => null,
    };

    public async Task<AuthOutcome> RegisterAsync(string email, string password, string? name, CancellationToken cancellationToken)
    {
        if (await users.FindByEmailAsync(email, cancellationToken) is not null)
        {
            return LocalAccounts.EmailTaken();
        }

        return await accounts.CreateAsync(Guid.NewGuid(), email, name, Hasher.HashPassword(null!, password), externalId: null, cancellationToken) switch
        {
            LocalAccount.Created created => await StartSessionAsync(created.User, cancellationToken),
            LocalAccount.Refused refused => refused.Outcome,
            var other => throw new InvalidOperationException($"Unexpected local account {other}"),
        };
    }

    public async Task<AuthOutcome> LoginAsync(string email, string password, CancellationToken cancellationToken)
    {
        var user = await users.FindByEmailAsync(email, cancellationToken);
        var verdict = Hasher.VerifyHashedPassword(user!, user?.PasswordHash ?? DummyHash, password);
        if (user?.PasswordHash is null || verdict == PasswordVerificationResult.Failed)
        {
            return InvalidCredentials();
        }

        return await StartSessionAsync(user, cancellationToken);
    }

    public async Task<AuthOutcome> RefreshAsync(string refreshToken, CancellationToken cancellationToken)
    {
        var result = await sessions.RotateAsync(refreshToken, cancellationToken);
        if (result.Outcome != RefreshOutcome.Rotated)
        {
            return new AuthOutcome.Refused(StatusCodes.Status401Unauthorized, AuthProblemCodes.InvalidRefreshToken,
                result.Outcome == RefreshOutcome.Reused
                    ? "This refresh token was already used; the session has been revoked. Log in again."
                    : "The refresh token is invalid, expired or revoked. Log in again.");
        }

        var user = await users.FindAsync(result.UserId, cancellationToken);
        if (user is null)
        {
            return new AuthOutcome.Refused(StatusCodes.Status401Unauthorized, AuthProblemCodes.InvalidRefreshToken, "The account no longer exists.");
        }

        return new AuthOutcome.Session(CreateAccessToken(user, result.SessionId), result.NewToken!, (int)options.Value.AccessTokenLifetime.TotalSeconds, user);
    }

    public Task LogoutAsync(ClaimsPrincipal user, string accessToken, CancellationToken cancellationToken) =>
        user.SessionId() is { } sessionId ? sessions.RevokeAsync(sessionId, "logout", cancellationToken) : Task.CompletedTask;

    public string CreateAccessToken(UserAccount user, Guid sessionId)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return _tokens.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = options.Value.Issuer,
            Audience = options.Value.Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + options.Value.AccessTokenLifetime,
            SigningCredentials = keys.Credentials,
            Claims = new Dictionary<string, object>
            {
                [AuthClaims.Subject] = user.Id.ToString(),
                [AuthClaims.Email] = user.Email,
                [AuthClaims.Role] = user.Role,
                [AuthClaims.Session] = sessionId.ToString(),
                [JwtRegisteredClaimNames.Jti] = Guid.NewGuid().ToString("N"),
            },
        });
    }

    private async Task<AuthOutcome> StartSessionAsync(UserAccount user, CancellationToken cancellationToken)
    {
        var (sessionId, refreshToken) = await sessions.StartAsync(user.Id, cancellationToken);
        return new AuthOutcome.Session(CreateAccessToken(user, sessionId), refreshToken, (int)options.Value.AccessTokenLifetime.TotalSeconds, user);
    }

    private static AuthOutcome.Refused InvalidCredentials() =>
        new(StatusCodes.Status401Unauthorized, AuthProblemCodes.InvalidCredentials, "The email or password is wrong.");
}
