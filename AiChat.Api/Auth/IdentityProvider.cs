using System.Security.Claims;
using AiChat.Api.Users;

namespace AiChat.Api.Auth;

/// <summary>The result of register, login or refresh: a session, a pending email confirmation, or a refusal.</summary>
public abstract record AuthOutcome
{
    public sealed record Session(string AccessToken, string RefreshToken, int ExpiresIn, UserAccount User) : AuthOutcome;

    public sealed record ConfirmationRequired(Guid UserId, string Email) : AuthOutcome;

    public sealed record Refused(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Extensions = null) : AuthOutcome;
}

/// <summary>Holds credentials and issues tokens: built-in accounts, or Supabase Auth.</summary>
public interface IIdentityProvider
{
    string Name { get; }

    Task<AuthOutcome> RegisterAsync(string email, string password, string? name, CancellationToken cancellationToken);

    Task<AuthOutcome> LoginAsync(string email, string password, CancellationToken cancellationToken);

    Task<AuthOutcome> RefreshAsync(string refreshToken, CancellationToken cancellationToken);

    Task LogoutAsync(ClaimsPrincipal user, string accessToken, CancellationToken cancellationToken);

    /// <summary>The password rule, checked before anything is created.</summary>
    string? CheckPassword(string password);
}
