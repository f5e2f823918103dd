using System.Security.Claims;
using System.Text.Encodings.Web;
using AiChat.Api.Infrastructure;
using AiChat.Api.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Auth;

/// <summary>
/// Personal API keys as bearer credentials, on the paths of other clients only (<see cref="KeyPaths"/>: the
/// OpenAI-compatible <c>/v1</c> and the MCP server at <c>/mcp</c>). Anywhere else a key is not looked at, so it fails as
/// any malformed access token does. A live key signs the request in as its user, with the key's id as a claim.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    IOptions<AuthOptions> authOptions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The scheme every request is authenticated with: a key on the key paths, an access token everywhere.</summary>
    public const string Selector = "BearerOrApiKey";

    public static readonly string[] KeyPaths = ["/v1", "/mcp"];

    /// <summary>The scheme for a request: keys are only read where they are accepted.</summary>
    public static string SchemeFor(HttpContext context) =>
        BearerValue(context.Request) is { } value && ApiKeyStore.LooksLikeKey(value) && IsKeyPath(context.Request.Path)
            ? SchemeName
            : JwtBearerDefaults.AuthenticationScheme;

    public static bool IsKeyPath(PathString path) => KeyPaths.Any(prefix => path.StartsWithSegments(prefix, StringComparison.OrdinalIgnoreCase));

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (BearerValue(Request) is not { } secret || !ApiKeyStore.LooksLikeKey(secret))
        {
            return AuthenticateResult.NoResult();
        }

        // Never the key in a message: it is logged by the framework when authentication fails.
        if (await keys.AuthenticateAsync(secret, Context.RequestAborted) is not { } owner)
        {
            return AuthenticateResult.Fail("The API key is unknown, revoked or expired.");
        }

        var role = authOptions.Value.IsAdmin(owner.User.Email) ? Roles.Admin : owner.User.Role;
        var identity = new ClaimsIdentity(
            [
                new Claim(AuthClaims.Subject, owner.User.Id.ToString()),
                new Claim(AuthClaims.Email, owner.User.Email),
                new Claim(AuthClaims.Role, role),
                new Claim(ApiUser.ApiKeyClaim, owner.Key.Id.ToString()),
            ],
            SchemeName, AuthClaims.Subject, AuthClaims.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }

    private static string? BearerValue(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
    }
}
