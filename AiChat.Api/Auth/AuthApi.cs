using AiChat.Api.Infrastructure;
using AiChat.Api.Users;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Auth;

public static class AuthApi
{
    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/auth").WithTags("Auth");

        group.MapPost("/register", RegisterAsync).RequireRateLimiting(AuthRateLimits.PolicyName);
        group.MapPost("/login", LoginAsync).RequireRateLimiting(AuthRateLimits.PolicyName);
        group.MapPost("/refresh", RefreshAsync).RequireRateLimiting(AuthRateLimits.PolicyName);
        group.MapPost("/logout", LogoutAsync).RequireAuthorization();
        group.MapGet("/me", GetMeAsync).RequireAuthorization();

        return app;
    }

    public static async Task<Results<Created<AuthResponse>, Accepted<ConfirmationResponse>, ProblemHttpResult>> RegisterAsync(
        RegisterRequest request, [AsParameters] AuthServices services, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        AccountRules.CheckEmail(errors, request.Email);
        AccountRules.CheckName(errors, request.Name);
        if (string.IsNullOrEmpty(request.Password))
        {
            errors.Add("password", "The password is required.");
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        if (services.Provider.CheckPassword(request.Password!) is { } weakness)
        {
            return Problems.Of(StatusCodes.Status422UnprocessableEntity, AuthProblemCodes.WeakPassword, weakness,
                new Dictionary<string, object?> { ["reasons"] = new[] { "length" } });
        }

        if (services.Limits.TryAcquireForEmail(request.Email!) is { } wait)
        {
            return Problems.TooManyRequests(context, wait, AuthProblemCodes.RateLimited);
        }

        var outcome = await RunAsync(() => services.Provider.RegisterAsync(request.Email!.Trim(), request.Password!, AccountRules.CleanName(request.Name), cancellationToken));
        return outcome switch
        {
            AuthOutcome.Session session => TypedResults.Created("/api/v1/auth/me", AuthResponse.From(session)),
            AuthOutcome.ConfirmationRequired pending => TypedResults.Accepted((string?)null, new ConfirmationResponse(new ConfirmationUser(pending.UserId, pending.Email), true)),
            AuthOutcome.Refused refused => Refusal(context, refused),
            _ => throw new InvalidOperationException($"Unexpected outcome {outcome}"),
        };
    }

    public static async Task<Results<Ok<AuthResponse>, ProblemHttpResult>> LoginAsync(
        LoginRequest request, [AsParameters] AuthServices services, HttpContext context, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        AccountRules.CheckEmail(errors, request.Email);
        if (string.IsNullOrEmpty(request.Password))
        {
            errors.Add("password", "The password is required.");
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        if (services.Limits.TryAcquireForEmail(request.Email!) is { } wait)
        {
            return Problems.TooManyRequests(context, wait, AuthProblemCodes.RateLimited);
        }

        var outcome = await RunAsync(() => services.Provider.LoginAsync(request.Email!.Trim(), request.Password!, cancellationToken));
        return outcome switch
        {
            AuthOutcome.Session session => TypedResults.Ok(AuthResponse.From(session)),
            AuthOutcome.Refused refused => Refusal(context, refused),
            _ => Problems.Of(StatusCodes.Status403Forbidden, AuthProblemCodes.EmailNotConfirmed, "Confirm the email address first."),
        };
    }

    public static async Task<Results<Ok<AuthResponse>, ProblemHttpResult>> RefreshAsync(
        RefreshRequest request, [AsParameters] AuthServices services, HttpContext context, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.RefreshToken))
        {
            return new FieldErrors().Add("refresh_token", "The refresh token is required.").ToProblem();
        }

        var outcome = await RunAsync(() => services.Provider.RefreshAsync(request.RefreshToken, cancellationToken));
        return outcome switch
        {
            AuthOutcome.Session session => TypedResults.Ok(AuthResponse.From(session)),
            AuthOutcome.Refused refused => Refusal(context, refused),
            _ => throw new InvalidOperationException($"Unexpected outcome {outcome}"),
        };
    }

    public static async Task<NoContent> LogoutAsync(HttpContext context, IIdentityProvider provider, CancellationToken cancellationToken)
    {
        var accessToken = context.Request.Headers.Authorization.ToString()["Bearer ".Length..].Trim();
        await provider.LogoutAsync(context.User, accessToken, cancellationToken);
        return TypedResults.NoContent();
    }

    public static async Task<Results<Ok<MeResponse>, UnauthorizedHttpResult>> GetMeAsync(
        HttpContext context, UserStore users, IIdentityProvider provider, IAgentSummaries agents, CancellationToken cancellationToken)
    {
        var user = await users.FindAsync(context.User.UserId(), cancellationToken);
        if (user is null)
        {
            return TypedResults.Unauthorized();
        }

        var agent = await agents.FindAsync(user.Id, cancellationToken);
        return TypedResults.Ok(new MeResponse(user.Id, user.Email, user.Name, context.User.FindFirst(AuthClaims.Role)?.Value ?? user.Role, user.CreatedAt, provider.Name, agent));
    }

    private static ProblemHttpResult Refusal(HttpContext context, AuthOutcome.Refused refused) =>
        refused.Status == StatusCodes.Status429TooManyRequests
            ? Problems.TooManyRequests(context, null, refused.Code)
            : Problems.Of(refused.Status, refused.Code, refused.Detail, refused.Extensions);

    private static async Task<AuthOutcome> RunAsync(Func<Task<AuthOutcome>> call)
    {
        try
        {
            return await call();
        }
        catch (IdentityProviderUnavailableException)
        {
            return new AuthOutcome.Refused(StatusCodes.Status502BadGateway, AuthProblemCodes.IdentityProviderError,
                "The identity provider did not answer as expected. Try again.");
        }
    }
}

public sealed record AuthServices(IIdentityProvider Provider, AuthRateLimits Limits);

public sealed record RegisterRequest(string? Email, string? Password, string? Name);

public sealed record LoginRequest(string? Email, string? Password);

public sealed record RefreshRequest(string? RefreshToken);

public sealed record AuthResponse(string AccessToken, string RefreshToken, string TokenType, int ExpiresIn, UserDto User)
{
    public static AuthResponse From(AuthOutcome.Session session) =>
        new(session.AccessToken, session.RefreshToken, "bearer", session.ExpiresIn, UserDto.From(session.User));
}

public sealed record ConfirmationUser(Guid Id, string Email);

public sealed record ConfirmationResponse(ConfirmationUser User, bool ConfirmationRequired);

public sealed record MeResponse(Guid Id, string Email, string? Name, string Role, DateTimeOffset CreatedAt, string IdentityProvider, AgentSummary? Agent);

public sealed class IdentityProviderUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
