using System.Globalization;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Users;

public static class AdminApi
{
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/admin").WithTags("Admin").RequireAuthorization(ApiUser.AdminPolicy);

        group.MapGet("/users", ListUsersAsync);
        group.MapPost("/users/{id:guid}/admin", GrantAdminAsync);
        group.MapGet("/grants", ListGrantsAsync);

        return app;
    }

    public static async Task<Results<Ok<UserPage>, ProblemHttpResult>> ListUsersAsync(
        UserStore users, int? limit, string? after, CancellationToken cancellationToken)
    {
        var size = limit ?? 50;
        if (size is < 1 or > 200)
        {
            return new FieldErrors().Add("limit", "The limit must be between 1 and 200.").ToProblem();
        }

        (DateTimeOffset, Guid)? position = null;
        if (after is not null)
        {
            if (DecodeCursor(after) is not { } decoded)
            {
                return new FieldErrors().Add("after", "The cursor is not one this API returned.").ToProblem();
            }

            position = decoded;
        }

        var page = await users.ListAsync(size + 1, position, cancellationToken);
        var items = page.Take(size).Select(UserDto.From).ToList();
        var next = page.Count > size ? EncodeCursor(page[size - 1].CreatedAt, page[size - 1].Id) : null;
        return TypedResults.Ok(new UserPage(items, next));
    }

    /// <summary>Makes an account an admin, recorded with the admin who did it.</summary>
    public static async Task<Results<Created<AdminGrantDto>, ProblemHttpResult>> GrantAdminAsync(
        Guid id, AdminGrants grants, HttpContext context, CancellationToken cancellationToken) =>
        await grants.GrantAsync(id, context.User.UserId(), GrantedVia.Admin, cancellationToken) switch
        {
            GrantOutcome.Granted granted => TypedResults.Created("/api/v1/admin/grants", AdminGrantDto.From(granted.Grant)),
            GrantOutcome.AlreadyAdmin => Problems.Of(StatusCodes.Status409Conflict, UserProblemCodes.AlreadyAdmin, "The account is an admin already."),
            _ => Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "There is no such account."),
        };

    /// <summary>Every admin grant: who was made an admin, by whom, how and when.</summary>
    public static async Task<Ok<GrantList>> ListGrantsAsync(AdminGrants grants, CancellationToken cancellationToken) =>
        TypedResults.Ok(new GrantList((await grants.ListAsync(cancellationToken)).Select(AdminGrantDto.From).ToList()));

    private static string EncodeCursor(DateTimeOffset createdAt, Guid id) => Cursor.Encode($"{createdAt.UtcTicks}|{id:N}");

    private static (DateTimeOffset, Guid)? DecodeCursor(string cursor)
    {
        if (!Cursor.TryDecode(cursor, out var position))
        {
            return null;
        }

        var parts = position.Split('|');
        return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            && ticks <= DateTimeOffset.MaxValue.UtcTicks && Guid.TryParseExact(parts[1], "N", out var id)
            ? (new DateTimeOffset(ticks, TimeSpan.Zero), id)
            : null;
    }
}

public sealed record UserDto(Guid Id, string Email, string? Name, string Role, DateTimeOffset CreatedAt)
{
    public static UserDto From(UserAccount user) => new(user.Id, user.Email, user.Name, user.Role, user.CreatedAt);
}

public sealed record UserPage(IReadOnlyList<UserDto> Users, string? NextCursor);

public sealed record AdminGrantDto(Guid Id, Guid UserId, Guid? GrantedBy, string Via, DateTimeOffset CreatedAt)
{
    public static AdminGrantDto From(AdminGrant grant) => new(grant.Id, grant.UserId, grant.GrantedBy, grant.Via, grant.CreatedAt);
}

public sealed record GrantList(IReadOnlyList<AdminGrantDto> Grants);

public static class UserProblemCodes
{
    public const string AlreadyAdmin = "already_admin";
}
