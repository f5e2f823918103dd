using System.Security.Claims;
using System.Text.Json;
using AiChat.Api.Users;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Auth;

/// <summary>
/// After a token's signature, issuer, audience and lifetime check out: finds the local account behind it
/// (a deleted account or a revoked session fails the request), provisions a Supabase user seen for the first time,
/// and replaces the token's claims with AiChat's own (its role comes from AiChat, not from the token's issuer).
/// </summary>
public sealed partial class AccountResolver(
    UserStore users,
    SessionStore sessions,
    LocalAccounts accounts,
    IOptions<SupabaseOptions> supabaseOptions,
    ILogger<AccountResolver> logger)
{
    public async Task OnTokenValidatedAsync(TokenValidatedContext context)
    {
        var principal = context.Principal!;
        if (!Guid.TryParse(principal.FindFirstValue(AuthClaims.Subject), out var userId))
        {
            context.Fail("The token's subject is not an account id.");
            return;
        }

        var cancellationToken = context.HttpContext.RequestAborted;
        UserAccount? user;
        Guid? sessionId;
        if (supabaseOptions.Value.Enabled)
        {
            user = await users.FindAsync(userId, cancellationToken) ?? await ProvisionFirstSeenAsync(userId, principal, cancellationToken);
            sessionId = Guid.TryParse(principal.FindFirstValue("session_id"), out var supabaseSession) ? supabaseSession : null;
        }
        else
        {
            // The account and its session, in one read.
            sessionId = principal.SessionId();
            user = sessionId is null ? null : await sessions.FindAccountOfActiveSessionAsync(sessionId.Value, userId, cancellationToken);
            if (user is null)
            {
                context.Fail("The account or its session no longer exists.");
                return;
            }
        }

        if (user is null)
        {
            context.Fail("The account could not be set up.");
            return;
        }

        // The role is the store's (granted and recorded, see AdminGrants), never the token's nor an email's.
        var role = user.Role;
        var claims = new List<Claim>
        {
            new(AuthClaims.Subject, user.Id.ToString()),
            new(AuthClaims.Email, user.Email),
            new(AuthClaims.Role, role),
        };
        if (sessionId is not null)
        {
            claims.Add(new(AuthClaims.Session, sessionId.Value.ToString()));
        }

        context.Principal = new ClaimsPrincipal(new ClaimsIdentity(claims, JwtBearerDefaults.AuthenticationScheme, AuthClaims.Subject, AuthClaims.Role));
    }

    private async Task<UserAccount?> ProvisionFirstSeenAsync(Guid userId, ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var email = principal.FindFirstValue(AuthClaims.Email);
        if (string.IsNullOrWhiteSpace(email))
        {
            return null;
        }

        var account = await accounts.CreateAsync(userId, email, NameFromMetadata(principal), passwordHash: null, externalId: userId.ToString(), cancellationToken);
        if (account is LocalAccount.Refused refused)
        {
            LogProvisioningFailed(logger, userId, refused.Outcome.Code);
        }

        return (account as LocalAccount.Created)?.User;
    }

    private static string? NameFromMetadata(ClaimsPrincipal principal)
    {
        var metadata = principal.FindFirstValue("user_metadata");
        if (string.IsNullOrWhiteSpace(metadata))
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(metadata);
            return json.RootElement.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                ? AccountRules.CleanName(name.GetString())?[..Math.Min(name.GetString()!.Trim().Length, AccountRules.MaxNameLength)]
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not set up the local account for Supabase user {UserId}: {Code}")]
    private static partial void LogProvisioningFailed(ILogger logger, Guid userId, string code);
}
