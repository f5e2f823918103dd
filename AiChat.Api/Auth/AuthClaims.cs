using System.Security.Claims;

namespace AiChat.Api.Auth;

/// <summary>The claims AiChat puts on an authenticated request, whichever provider issued the token.</summary>
public static class AuthClaims
{
    public const string Subject = Infrastructure.ApiUser.SubjectClaim;
    public const string Email = "email";
    public const string Role = "role";
    public const string Session = "sid";
    public const string Name = "name";

    public static Guid? SessionId(this ClaimsPrincipal principal) =>
        Guid.TryParse(principal.FindFirstValue(Session), out var id) ? id : null;
}
