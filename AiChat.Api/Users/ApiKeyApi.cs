using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Users;

/// <summary>
/// Personal API keys: the user's own (<c>/api/v1/user/api-keys</c>, signed in with an access token, never with a key)
/// and the admin's view of anyone's. A key is shown once, in the answer that made it.
/// </summary>
public static class ApiKeyApi
{
    public const int MaxKeysPerUser = 50;

    public const int MaxNameChars = 100;

    public static IEndpointRouteBuilder MapApiKeyApi(this IEndpointRouteBuilder app)
    {
        var own = app.MapGroup("/api/v1/user/api-keys").WithTags("API keys").RequireAuthorization();
        own.MapPost("", CreateAsync);
        own.MapGet("", ListAsync);
        own.MapDelete("/{keyId}", RevokeAsync);

        var admin = app.MapGroup("/api/v1/admin/users/{userId:guid}/api-keys").WithTags("Admin").RequireAuthorization(ApiUser.AdminPolicy);
        admin.MapGet("", AdminListAsync);
        admin.MapDelete("/{keyId}", AdminRevokeAsync);

        return app;
    }

    public static async Task<Results<Created<CreatedApiKeyDto>, ProblemHttpResult>> CreateAsync(
        CreateApiKeyRequest request, HttpContext context, ApiKeyStore keys, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameChars || name.Any(char.IsControl))
        {
            errors.Add("name", $"The name has 1 to {MaxNameChars} characters and no control characters.");
        }

        if (request.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            errors.Add("expires_at", "The expiry, when given, is in the future.");
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var userId = context.User.UserId();
        if (await keys.CountAsync(userId, cancellationToken) >= MaxKeysPerUser)
        {
            return Problems.Of(StatusCodes.Status422UnprocessableEntity, UserProblems.TooManyApiKeys,
                $"An account has at most {MaxKeysPerUser} API keys; revoke one first.", new Dictionary<string, object?> { ["max_keys"] = MaxKeysPerUser });
        }

        var (key, secret) = await keys.CreateAsync(userId, name!, request.ExpiresAt, cancellationToken);
        var dto = ApiKeyDto.From(key);
        return TypedResults.Created($"/api/v1/user/api-keys/{key.Id}",
            new CreatedApiKeyDto(dto.Id, dto.Name, dto.Prefix, dto.CreatedAt, dto.ExpiresAt, dto.LastUsedAt, secret));
    }

    public static async Task<Ok<ApiKeyList>> ListAsync(HttpContext context, ApiKeyStore keys, CancellationToken cancellationToken) =>
        TypedResults.Ok(new ApiKeyList((await keys.ListAsync(context.User.UserId(), cancellationToken)).Select(ApiKeyDto.From).ToList()));

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(string keyId, HttpContext context, ApiKeyStore keys, CancellationToken cancellationToken) =>
        await RevokeOfAsync(context.User.UserId(), keyId, keys, cancellationToken);

    public static async Task<Results<Ok<ApiKeyList>, ProblemHttpResult>> AdminListAsync(Guid userId, UserStore users, ApiKeyStore keys, CancellationToken cancellationToken) =>
        await users.FindAsync(userId, cancellationToken) is null
            ? Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such user.")
            : TypedResults.Ok(new ApiKeyList((await keys.ListAsync(userId, cancellationToken)).Select(ApiKeyDto.From).ToList()));

    public static async Task<Results<NoContent, ProblemHttpResult>> AdminRevokeAsync(Guid userId, string keyId, ApiKeyStore keys, CancellationToken cancellationToken) =>
        await RevokeOfAsync(userId, keyId, keys, cancellationToken);

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeOfAsync(Guid userId, string keyId, ApiKeyStore keys, CancellationToken cancellationToken) =>
        Guid.TryParse(keyId, out var id) && await keys.RevokeAsync(userId, id, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such API key.");
}

public sealed record CreateApiKeyRequest(string? Name, DateTimeOffset? ExpiresAt);

public sealed record ApiKeyDto(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt)
{
    public static ApiKeyDto From(ApiKeyRecord key) => new(key.Id, key.Name, key.Prefix, key.CreatedAt, key.ExpiresAt, key.LastUsedAt);
}

/// <summary>The answer that makes a key: the only one that ever carries it.</summary>
public sealed record CreatedApiKeyDto(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt, string Key);

public sealed record ApiKeyList(IReadOnlyList<ApiKeyDto> Keys);

public static class UserProblems
{
    public const string TooManyApiKeys = "too_many_api_keys";
}
