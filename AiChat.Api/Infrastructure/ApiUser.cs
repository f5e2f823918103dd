using System.Security.Claims;

namespace AiChat.Api.Infrastructure;

/// <summary>Who an authenticated request is for, as every feature reads it (Auth puts the claims there).</summary>
public static class ApiUser
{
    /// <summary>The claim holding the account id.</summary>
    public const string SubjectClaim = "sub";

    /// <summary>The authorization policy of the admin endpoints.</summary>
    public const string AdminPolicy = "admin";

    public static Guid UserId(this ClaimsPrincipal principal) =>
        Guid.Parse(principal.FindFirstValue(SubjectClaim) ?? throw new InvalidOperationException("The request is not authenticated."));
}
