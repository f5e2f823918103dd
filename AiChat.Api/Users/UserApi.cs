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

    public static async Task<Ok<AccountHealth>> GetHealthAsync(HttpContext context, AccountLifecycle accounts, CancellationToken cancellationToken) =>
        TypedResults.Ok(await accounts.CheckAsync(context.User.UserId(), cancellationToken));

    public static async Task<Ok<Dictionary<string, object?>>> ExportAsync(HttpContext context, AccountLifecycle accounts, CancellationToken cancellationToken) =>
        TypedResults.Ok(await accounts.ExportAsync(context.User.UserId(), cancellationToken));

    public static async Task<NoContent> DeleteAccountAsync(HttpContext context, AccountLifecycle accounts, CancellationToken cancellationToken)
    {
        await accounts.DeleteAsync(context.User.UserId(), cancellationToken);
        return TypedResults.NoContent();
    }
}

public sealed record ProfileDto(Guid Id, string Email, string? Name, string Role, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static ProfileDto From(UserAccount user) => new(user.Id, user.Email, user.Name, user.Role, user.CreatedAt, user.UpdatedAt);
}

public sealed record UpdateProfileRequest(string? Name);

/// <summary>The account's health: healthy when every component that reports one is, with each one's check under its name.</summary>
public sealed record AccountHealth(string Status, IReadOnlyDictionary<string, AccountCheck> Checks);
