using AiChat.Api.Users;

namespace AiChat.Api.Auth;

/// <summary>The local account set up for a new identity: the account, or the refusal to answer with.</summary>
public abstract record LocalAccount
{
    public sealed record Created(UserAccount User) : LocalAccount;

    public sealed record Refused(AuthOutcome.Refused Outcome) : LocalAccount;
}

/// <summary>
/// The one way either identity provider (and a first-seen Supabase token) gets a local account: through the account
/// lifecycle, always with the user role (an email never makes an admin by itself), and its failures turned into the
/// refusals the API answers with.
/// </summary>
public sealed class LocalAccounts(AccountLifecycle lifecycle, UserStore users)
{
    public async Task<LocalAccount> CreateAsync(Guid userId, string email, string? name, string? passwordHash, string? externalId, CancellationToken cancellationToken)
    {
        var account = new NewAccount(userId, email.Trim(), name, Roles.User, passwordHash, externalId);
        try
        {
            await lifecycle.ProvisionAsync(account, cancellationToken);
        }
        catch (EmailTakenException)
        {
            return new LocalAccount.Refused(EmailTaken());
        }
        catch (ProvisioningFailedException)
        {
            return new LocalAccount.Refused(new(StatusCodes.Status503ServiceUnavailable, AuthProblemCodes.ProvisioningFailed,
                "The account could not be set up; nothing was kept. Try again."));
        }

        return await users.FindAsync(userId, cancellationToken) is { } user
            ? new LocalAccount.Created(user)
            : throw new InvalidOperationException("The account vanished right after it was provisioned.");
    }

    public static AuthOutcome.Refused EmailTaken() =>
        new(StatusCodes.Status409Conflict, AuthProblemCodes.UserAlreadyExists, "An account with this email already exists.");
}
