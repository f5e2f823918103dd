using System.Security.Claims;
using AiChat.Api.Users;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Auth;

/// <summary>
/// Credentials and sessions held by Supabase Auth; AiChat keeps the profile and everything else.
/// The local account is provisioned on registration with a session, else on the first login or authenticated request.
/// An email named in <c>Auth:Admins</c> becomes an admin (recorded) at a session whose user Supabase shows confirmed.
/// </summary>
public sealed class SupabaseIdentityProvider(
    SupabaseAuthClient supabase,
    UserStore users,
    LocalAccounts accounts,
    AdminGrants grants,
    IOptions<AuthOptions> options) : IIdentityProvider
{
    public string Name => "supabase";

    // Supabase applies its own policy (6–72 characters by default) and answers weak_password with its reasons.
    public string? CheckPassword(string password) => password.Length > 72 ? "The password must have at most 72 characters." : null;

    public async Task<AuthOutcome> RegisterAsync(string email, string password, string? name, CancellationToken cancellationToken)
    {
        var reply = await supabase.SignUpAsync(email, password, name, cancellationToken);
        if (reply.Error is not null)
        {
            return Map(reply);
        }

        if (reply.Session is null)
        {
            return reply.User is null
                ? Unexpected()
                : new AuthOutcome.ConfirmationRequired(reply.User.Id, reply.User.Email);
        }

        return await WithLocalAccountAsync(reply.Session, name, cancellationToken);
    }

    public async Task<AuthOutcome> LoginAsync(string email, string password, CancellationToken cancellationToken)
    {
        var reply = await supabase.SignInWithPasswordAsync(email, password, cancellationToken);
        return reply.Session is null ? Map(reply) : await WithLocalAccountAsync(reply.Session, reply.Session.User.Name, cancellationToken);
    }

    public async Task<AuthOutcome> RefreshAsync(string refreshToken, CancellationToken cancellationToken)
    {
        var reply = await supabase.RefreshAsync(refreshToken, cancellationToken);
        if (reply.Session is null)
        {
            return reply.Status is >= 400 and < 500 && reply.Status != 429
                ? new AuthOutcome.Refused(StatusCodes.Status401Unauthorized, AuthProblemCodes.InvalidRefreshToken, "The refresh token is invalid, expired or already used. Log in again.")
                : Map(reply);
        }

        return await WithLocalAccountAsync(reply.Session, reply.Session.User.Name, cancellationToken);
    }

    public async Task LogoutAsync(ClaimsPrincipal user, string accessToken, CancellationToken cancellationToken) =>
        await supabase.LogoutAsync(accessToken, cancellationToken);

    private async Task<AuthOutcome> WithLocalAccountAsync(SupabaseSession session, string? name, CancellationToken cancellationToken)
    {
        var user = await users.FindAsync(session.User.Id, cancellationToken);
        if (user is null)
        {
            switch (await accounts.CreateAsync(session.User.Id, session.User.Email, name, passwordHash: null, externalId: session.User.Id.ToString(), cancellationToken))
            {
                case LocalAccount.Created created:
                    user = created.User;
                    break;
                case LocalAccount.Refused refused:
                    return refused.Outcome;
            }
        }

        if (user!.Role != Roles.Admin && session.User.EmailConfirmed && options.Value.IsAdmin(session.User.Email)
            && await grants.GrantAsync(user.Id, null, GrantedVia.Config, cancellationToken) is GrantOutcome.Granted)
        {
            user = await users.FindAsync(user.Id, cancellationToken) ?? user;
        }

        return SessionOf(session, user);
    }

    private static AuthOutcome.Session SessionOf(SupabaseSession session, UserAccount user) =>
        new(session.AccessToken, session.RefreshToken, session.ExpiresIn, user);

    private static AuthOutcome.Refused Map(SupabaseReply reply) => reply.Error?.Code switch
    {
        "invalid_credentials" => new(StatusCodes.Status401Unauthorized, AuthProblemCodes.InvalidCredentials, "The email or password is wrong."),
        "user_already_exists" or "email_exists" => LocalAccounts.EmailTaken(),
        "weak_password" => new(StatusCodes.Status422UnprocessableEntity, AuthProblemCodes.WeakPassword, reply.Error.Message ?? "The password is too weak.",
            new Dictionary<string, object?> { ["reasons"] = reply.Error.Reasons }),
        "email_not_confirmed" => new(StatusCodes.Status403Forbidden, AuthProblemCodes.EmailNotConfirmed, "Confirm the email address first."),
        "over_request_rate_limit" or "over_email_send_rate_limit" => new(StatusCodes.Status429TooManyRequests, AuthProblemCodes.RateLimited, "Too many attempts."),
        "validation_failed" or "email_address_invalid" => new(StatusCodes.Status422UnprocessableEntity, Infrastructure.ProblemCodes.ValidationFailed, reply.Error.Message ?? "The request was refused."),
        _ => Unexpected(),
    };

    private static AuthOutcome.Refused Unexpected() =>
        new(StatusCodes.Status502BadGateway, AuthProblemCodes.IdentityProviderError, "The identity provider answered unexpectedly. Try again.");
}
