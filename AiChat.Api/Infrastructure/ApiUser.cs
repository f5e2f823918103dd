using System.Security.Claims;

namespace AiChat.Api.Infrastructure;

/// <summary>Who an authenticated request is for, as every feature reads it (Auth puts the claims there).</summary>
public static class ApiUser
{
    /// <summary>The claim holding the account id.</summary>
    public const string SubjectClaim = "sub";

    /// <summary>The authorization policy of the admin endpoints.</summary>
    public const string AdminPolicy = "admin";

    /// <summary>The claim holding the id of the personal API key a request was signed in with (none for an access token).</summary>
    public const string ApiKeyClaim = "key_id";

    public static Guid? ApiKeyId(this ClaimsPrincipal principal) =>
        Guid.TryParse(principal.FindFirstValue(ApiKeyClaim), out var id) ? id : null;

    public static Guid UserId(this ClaimsPrincipal principal) =>
        Guid.Parse(principal.FindFirstValue(SubjectClaim) ?? throw new InvalidOperationException("The request is not authenticated."));
}
