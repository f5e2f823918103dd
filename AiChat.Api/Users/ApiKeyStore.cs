using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Data;
using Dapper;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Users;

/// <summary>A personal API key as stored: never the key itself, only its SHA-256 and the prefix shown to tell keys apart.</summary>
public sealed record ApiKeyRecord(Guid Id, Guid UserId, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? LastUsedAt);

/// <summary>The key a presented secret belongs to, with its owner's account, when it is valid now.</summary>
public sealed record ApiKeyOwner(ApiKeyRecord Key, UserAccount User);

/// <summary>
/// Personal API keys: <c>aik_</c> and 256 random bits (base64url), shown once; the store keeps a SHA-256 of the key
/// (enough for a secret of that entropy), so a reader of the database cannot use a key. Revoking deletes the row: the
/// next request with the key is refused. Last use is written at most once per <see cref="LastUsedResolution"/>.
/// </summary>
public sealed class ApiKeyStore(AiChatDb db, TimeProvider time)
{
    public const string KeyPrefix = "aik_";

    /// <summary>How stale <c>last_used_at</c> may be: one write a minute per key at most, however busy the key is.</summary>
    public static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    private const int PrefixLength = 12;

    private const string Columns =
        "id, user_id AS UserId, name, prefix, created_at AS CreatedAt, expires_at AS ExpiresAt, last_used_at AS LastUsedAt";

    public static bool LooksLikeKey(string value) => value.StartsWith(KeyPrefix, StringComparison.Ordinal);

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Makes a key for the user; the returned secret is the only time it exists outside the caller.</summary>
    public async Task<(ApiKeyRecord Key, string Secret)> CreateAsync(Guid userId, string name, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        var secret = KeyPrefix + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        var key = new ApiKeyRecord(Guid.CreateVersion7(), userId, name, secret[..PrefixLength], Microseconds(now), expiresAt is { } e ? Microseconds(e) : null, null);
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at)
            VALUES (@Id, @UserId, @Name, @Prefix, @hash, @CreatedAt, @ExpiresAt)
            """,
            new { key.Id, key.UserId, key.Name, key.Prefix, hash = Hash(secret), key.CreatedAt, key.ExpiresAt }, cancellationToken: cancellationToken));
        return (key, secret);
    }

    public async Task<IReadOnlyList<ApiKeyRecord>> ListAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ApiKeyRecord>(new CommandDefinition(
            $"SELECT {Columns} FROM api_keys WHERE user_id = @userId ORDER BY created_at, id", new { userId }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    public async Task<int> CountAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            "SELECT COUNT(*) FROM api_keys WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
    }

    /// <summary>Revokes one of the user's keys; false when the user has no key with that id.</summary>
    public async Task<bool> RevokeAsync(Guid userId, Guid keyId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM api_keys WHERE id = @keyId AND user_id = @userId", new { keyId, userId }, cancellationToken: cancellationToken)) == 1;
    }

    public async Task RevokeAllAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM api_keys WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// The key and its owner when <paramref name="secret"/> is a live key (not revoked, not expired); null otherwise.
    /// Marks it used, at most once per <see cref="LastUsedResolution"/>.
    /// </summary>
    public async Task<ApiKeyOwner?> AuthenticateAsync(string secret, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<OwnerRow>(new CommandDefinition(
            """
            SELECT k.id AS KeyId, k.name AS KeyName, k.prefix, k.created_at AS KeyCreatedAt, k.expires_at AS ExpiresAt, k.last_used_at AS LastUsedAt,
                   u.id AS UserId, u.email, u.name AS UserName, u.role, u.created_at AS UserCreatedAt, u.updated_at AS UserUpdatedAt
            FROM api_keys k JOIN users u ON u.id = k.user_id
            WHERE k.key_hash = @hash
            """,
            new { hash = Hash(secret) }, cancellationToken: cancellationToken));
        if (row is null || row.ExpiresAt <= now)
        {
            return null;
        }

        if (row.LastUsedAt is null || row.LastUsedAt <= now - LastUsedResolution)
        {
            var threshold = now - LastUsedResolution;
            // Conditional, so parallel requests of one key write it once.
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE api_keys SET last_used_at = @now WHERE id = @id AND (last_used_at IS NULL OR last_used_at <= @threshold)",
                new { id = row.KeyId, now = Microseconds(now), threshold }, cancellationToken: cancellationToken));
        }

        var key = new ApiKeyRecord(row.KeyId, row.UserId, row.KeyName, row.Prefix, row.KeyCreatedAt, row.ExpiresAt, row.LastUsedAt);
        var user = new UserAccount(row.UserId, row.Email, row.UserName, row.Role, null, null, row.UserCreatedAt, row.UserUpdatedAt);
        return new ApiKeyOwner(key, user);
    }

    private static DateTimeOffset Microseconds(DateTimeOffset instant) => new(instant.UtcTicks - instant.UtcTicks % 10, TimeSpan.Zero);

    private sealed class OwnerRow
    {
        public Guid KeyId { get; set; }

        public string KeyName { get; set; } = "";

        public string Prefix { get; set; } = "";

        public DateTimeOffset KeyCreatedAt { get; set; }

        public DateTimeOffset? ExpiresAt { get; set; }

        public DateTimeOffset? LastUsedAt { get; set; }

        public Guid UserId { get; set; }

        public string Email { get; set; } = "";

        public string? UserName { get; set; }

        public string Role { get; set; } = "";

        public DateTimeOffset UserCreatedAt { get; set; }

        public DateTimeOffset UserUpdatedAt { get; set; }
    }
}
