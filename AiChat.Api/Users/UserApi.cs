using AiChat.Api.Auth;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Users;

public static class UserApi
{
    public static IEndpointRouteBuilder MapUserApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/user").WithTags("User").RequireAuthorization();

        group.MapGet("/profile", GetProfileAsync);
        group.MapPatch("/profile", UpdateProfileAsync);
        group.MapGet("/health", GetHealthAsync);
        group.MapGet("/export", ExportAsync);
        group.MapDelete("/", DeleteAccountAsync);

        return app;
    }

    public static async Task<Results<Ok<ProfileDto>, NotFound>> GetProfileAsync(HttpContext context, UserStore users, CancellationToken cancellationToken) =>
        await users.FindAsync(context.User.UserId(), cancellationToken) is { } user
            ? TypedResults.Ok(ProfileDto.From(user))
            : TypedResults.NotFound();

    public static async Task<Results<Ok<ProfileDto>, NotFound, ProblemHttpResult>> UpdateProfileAsync(
        UpdateProfileRequest request, HttpContext context, UserStore users, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        AccountRules.CheckName(errors, request.Name);
        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var user = await users.UpdateNameAsync(context.User.UserId(), AccountRules.CleanName(request.Name), time.GetUtcNow(), cancellationToken);
        return user is null ? TypedResults.NotFound() : TypedResults.Ok(ProfileDto.From(user));
    }

    public static async Task<Ok<AccountHealth>> GetHealthAsync(HttpContext context, IEnumerable<IAccountPart> parts, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        var checks = new Dictionary<string, AccountPartHealth>();
        foreach (var part in parts)
        {
            checks[part.Name] = await part.CheckAsync(userId, cancellationToken);
        }

        return TypedResults.Ok(new AccountHealth(checks.Values.All(c => c.Ok) ? "healthy" : "degraded", checks));
    }

    public static async Task<Ok<Dictionary<string, object?>>> ExportAsync(
        HttpContext context, IEnumerable<IAccountPart> parts, TimeProvider time, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        var export = new Dictionary<string, object?> { ["exported_at"] = time.GetUtcNow() };
        foreach (var part in parts)
        {
            export[part.Name] = await part.ExportAsync(userId, cancellationToken);
        }

        return TypedResults.Ok(export);
    }

    public static async Task<NoContent> DeleteAccountAsync(HttpContext context, ProvisioningPipeline provisioning, CancellationToken cancellationToken)
    {
        await provisioning.DeprovisionAsync(context.User.UserId(), cancellationToken);
        return TypedResults.NoContent();
    }
}

public sealed record ProfileDto(Guid Id, string Email, string? Name, string Role, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static ProfileDto From(UserAccount user) => new(user.Id, user.Email, user.Name, user.Role, user.CreatedAt, user.UpdatedAt);
}

public sealed record UpdateProfileRequest(string? Name);

public sealed record AccountPartHealth(bool Ok, string Status, string? Detail = null);

public sealed record AccountHealth(string Status, IReadOnlyDictionary<string, AccountPartHealth> Checks);

/// <summary>A part of an account that reports its own health and contributes its data to the export (profile; later agent, billing).</summary>
public interface IAccountPart
{
    string Name { get; }

    Task<AccountPartHealth> CheckAsync(Guid userId, CancellationToken cancellationToken);

    Task<object?> ExportAsync(Guid userId, CancellationToken cancellationToken);
}

/// <summary>The profile and the sign-in sessions (never the password hash or a token).</summary>
public sealed class ProfilePart(UserStore users, SessionStore sessions) : IAccountPart
{
    public string Name => "profile";

    public async Task<AccountPartHealth> CheckAsync(Guid userId, CancellationToken cancellationToken) =>
        await users.FindAsync(userId, cancellationToken) is null
            ? new(false, "missing", "The profile row is missing.")
            : new(true, "ok");

    public async Task<object?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var user = await users.FindAsync(userId, cancellationToken);
        if (user is null)
        {
            return null;
        }

        var sessionList = await sessions.ListAsync(userId, cancellationToken);
        return new
        {
            account = ProfileDto.From(user),
            sessions = sessionList.Select(s => new { id = s.Id, created_at = s.CreatedAt, revoked_at = s.RevokedAt, revoked_reason = s.RevokedReason }),
        };
    }
}
