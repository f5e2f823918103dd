namespace AiChat.Api.Users;

/// <summary>A sign-in session as the export shows it: when it started and whether (and why) it ended.</summary>
public sealed record SignInSession(Guid Id, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, string? RevokedReason);

/// <summary>The account's sign-in sessions, for its export; implemented by Auth, which owns credentials and sessions.</summary>
public interface ISignInSessions
{
    Task<IReadOnlyList<SignInSession>> ListAsync(Guid userId, CancellationToken cancellationToken);
}

/// <summary>
/// The account's profile row: written first, deleted last (deleting it removes every row the user owns). Its export is
/// the profile and the sign-in sessions (never the password hash or a token).
/// </summary>
public sealed class ProfileAccount(UserStore users, ISignInSessions sessions, TimeProvider time) : IAccountComponent
{
    public string Name => "profile";

    public int Order => AccountOrder.Profile;

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var user = new UserAccount(account.UserId, account.Email.Trim(), account.Name, account.Role, account.PasswordHash, account.ExternalId, now, now);
        if (await users.TryInsertAsync(user, cancellationToken))
        {
            return;
        }

        // A retry for the same user finds its own row; a row of anyone else means the email is taken.
        if (await users.FindAsync(account.UserId, cancellationToken) is null)
        {
            throw new EmailTakenException();
        }
    }

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => users.DeleteAsync(userId, cancellationToken);

    public async Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) =>
        await users.FindAsync(userId, cancellationToken) is null ? AccountCheck.Missing("The profile row is missing.") : AccountCheck.Fine;

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var user = await users.FindAsync(userId, cancellationToken);
        if (user is null)
        {
            return new ExportSection(null);
        }

        var sessionList = await sessions.ListAsync(userId, cancellationToken);
        return new ExportSection(new
        {
            account = ProfileDto.From(user),
            sessions = sessionList.Select(s => new { id = s.Id, created_at = s.CreatedAt, revoked_at = s.RevokedAt, revoked_reason = s.RevokedReason }),
        });
    }
}
