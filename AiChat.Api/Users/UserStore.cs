using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Users;

public sealed record UserAccount(
    Guid Id,
    string Email,
    string? Name,
    string Role,
    string? PasswordHash,
    string? ExternalId,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

public static class Roles
{
    public const string User = "user";
    public const string Admin = "admin";
}

/// <summary>The users table: one row per account, whichever identity provider holds its credentials.</summary>
public sealed class UserStore(AiChatDb db)
{
    /// <summary>The account's columns as <see cref="UserAccount"/> reads them (for a read joined with another feature's check).</summary>
    public const string Columns =
        "id, email, name, role, password_hash AS PasswordHash, external_id AS ExternalId, created_at AS CreatedAt, updated_at AS UpdatedAt";

    public static string NormalizeEmail(string email) => email.Trim().ToLowerInvariant();

    public async Task<UserAccount?> FindAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<UserAccount>(
            new CommandDefinition($"SELECT {Columns} FROM users WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    public async Task<UserAccount?> FindByEmailAsync(string email, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<UserAccount>(new CommandDefinition(
            $"SELECT {Columns} FROM users WHERE email_normalized = @normalized", new { normalized = NormalizeEmail(email) }, cancellationToken: cancellationToken));
    }

    /// <summary>Inserts the account; false when the id or the email is already taken.</summary>
    public async Task<bool> TryInsertAsync(UserAccount user, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO users (id, email, email_normalized, name, role, password_hash, external_id, created_at, updated_at)
                VALUES (@Id, @Email, @EmailNormalized, @Name, @Role, @PasswordHash, @ExternalId, @CreatedAt, @UpdatedAt)
                """,
                new
                {
                    user.Id,
                    user.Email,
                    EmailNormalized = NormalizeEmail(user.Email),
                    user.Name,
                    user.Role,
                    user.PasswordHash,
                    user.ExternalId,
                    user.CreatedAt,
                    user.UpdatedAt,
                },
                cancellationToken: cancellationToken));
            return true;
        }
        catch (Exception ex) when (DbErrors.IsUniqueViolation(ex))
        {
            return false;
        }
    }

    public async Task<UserAccount?> UpdateNameAsync(Guid id, string? name, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE users SET name = @name, updated_at = @now WHERE id = @id", new { id, name, now }, cancellationToken: cancellationToken));
        return changed == 0 ? null : await FindAsync(id, cancellationToken);
    }

    public async Task UpdateRoleAsync(Guid id, string role, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE users SET role = @role WHERE id = @id AND role <> @role", new { id, role }, cancellationToken: cancellationToken));
    }

    /// <summary>Deletes the account; everything it owns goes with it (foreign keys cascade).</summary>
    public async Task DeleteAsync(Guid id, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM users WHERE id = @id", new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>A page of accounts in creation order, after the given (created_at, id) position.</summary>
    public async Task<IReadOnlyList<UserAccount>> ListAsync(int limit, (DateTimeOffset CreatedAt, Guid Id)? after, CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var sql = after is null
            ? $"SELECT {Columns} FROM users ORDER BY created_at, id LIMIT @limit"
            : $"SELECT {Columns} FROM users WHERE created_at > @createdAt OR (created_at = @createdAt AND id > @id) ORDER BY created_at, id LIMIT @limit";
        var rows = await connection.QueryAsync<UserAccount>(new CommandDefinition(
            sql, new { limit, createdAt = after?.CreatedAt ?? default, id = after?.Id ?? default }, cancellationToken: cancellationToken));
        return rows.AsList();
    }
}
