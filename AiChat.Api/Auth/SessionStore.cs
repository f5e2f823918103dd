using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Data;
using AiChat.Api.Users;
using Dapper;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Api.Auth;

public enum RefreshOutcome
{
    Rotated,
    Unknown,
    Expired,
    Revoked,
    Reused,
}

public sealed record RefreshResult(RefreshOutcome Outcome, Guid UserId = default, Guid SessionId = default, string? NewToken = null);

/// <summary>
/// Built-in sessions: each login starts one; its refresh tokens are stored as SHA-256 hashes and rotate on every use.
/// Presenting a token that was already used revokes the whole session (its chain), since one of the two holders is a thief.
/// </summary>
public sealed class SessionStore(AiChatDb db, TimeProvider time, IOptions<AuthOptions> options) : ISignInSessions
{
    public async Task<(Guid SessionId, string RefreshToken)> StartAsync(Guid userId, CancellationToken cancellationToken)
    {
        var sessionId = Guid.NewGuid();
        var now = time.GetUtcNow();
        var token = NewToken();
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO auth_sessions (id, user_id, created_at) VALUES (@sessionId, @userId, @now)",
            new { sessionId, userId, now }, transaction, cancellationToken: cancellationToken));
        await InsertTokenAsync(connection, transaction, token, sessionId, userId, now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return (sessionId, token);
    }

    public async Task<RefreshResult> RotateAsync(string refreshToken, CancellationToken cancellationToken)
    {
        var hash = Hash(refreshToken);
        var now = time.GetUtcNow();
        await using var connection = await db.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<TokenRow>(new CommandDefinition(
            """
            SELECT t.session_id AS SessionId, t.user_id AS UserId, t.expires_at AS ExpiresAt, t.used_at AS UsedAt, s.revoked_at AS RevokedAt
            FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id
            WHERE t.token_hash = @hash
            """,
            new { hash }, cancellationToken: cancellationToken));

        if (row is null)
        {
            return new(RefreshOutcome.Unknown);
        }

        if (row.RevokedAt is not null)
        {
            return new(RefreshOutcome.Revoked, row.UserId, row.SessionId);
        }

        if (row.UsedAt is not null)
        {
            await RevokeAsync(row.SessionId, "refresh_token_reused", cancellationToken);
            return new(RefreshOutcome.Reused, row.UserId, row.SessionId);
        }

        if (row.ExpiresAt <= now)
        {
            return new(RefreshOutcome.Expired, row.UserId, row.SessionId);
        }

        var next = NewToken();
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // The guard on used_at makes two concurrent uses of one token end with exactly one winner.
        var claimed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE refresh_tokens SET used_at = @now WHERE token_hash = @hash AND used_at IS NULL",
            new { hash, now }, transaction, cancellationToken: cancellationToken));
        if (claimed == 0)
        {
            await transaction.RollbackAsync(cancellationToken);
            await RevokeAsync(row.SessionId, "refresh_token_reused", cancellationToken);
            return new(RefreshOutcome.Reused, row.UserId, row.SessionId);
        }

        await InsertTokenAsync(connection, transaction, next, row.SessionId, row.UserId, now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new(RefreshOutcome.Rotated, row.UserId, row.SessionId, next);
    }

    public async Task RevokeAsync(Guid sessionId, string reason, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE auth_sessions SET revoked_at = @now, revoked_reason = @reason WHERE id = @sessionId AND revoked_at IS NULL",
            new { sessionId, reason, now = time.GetUtcNow() }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// The account behind an access token, read only while the token's session still stands (null once the account is
    /// deleted, or the session logged out or revoked): what every request with a built-in token checks, in one round trip.
    /// </summary>
    public async Task<Users.UserAccount?> FindAccountOfActiveSessionAsync(Guid sessionId, Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<Users.UserAccount>(new CommandDefinition(
            $"""
            SELECT {Users.UserStore.Columns} FROM users
            WHERE id = @userId AND EXISTS (SELECT 1 FROM auth_sessions s WHERE s.id = @sessionId AND s.user_id = @userId AND s.revoked_at IS NULL)
            """,
            new { sessionId, userId }, cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<SignInSession>> ListAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<SignInSession>(new CommandDefinition(
            "SELECT id, created_at AS CreatedAt, revoked_at AS RevokedAt, revoked_reason AS RevokedReason FROM auth_sessions WHERE user_id = @userId ORDER BY created_at",
            new { userId }, cancellationToken: cancellationToken));
        return rows.AsList();
    }

    private Task InsertTokenAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string token, Guid sessionId, Guid userId, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO refresh_tokens (token_hash, session_id, user_id, created_at, expires_at) VALUES (@hash, @sessionId, @userId, @now, @expires)",
            new { hash = Hash(token), sessionId, userId, now, expires = now + options.Value.RefreshTokenLifetime },
            transaction, cancellationToken: cancellationToken));

    private static string NewToken() => "rt_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    // Refresh tokens carry 256 random bits: a plain SHA-256 is enough to make the stored value useless to a reader of the database.
    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private sealed record TokenRow(Guid SessionId, Guid UserId, DateTimeOffset ExpiresAt, DateTimeOffset? UsedAt, DateTimeOffset? RevokedAt);
}
