using AiChat.Api.Data;
using Dapper;

namespace AiChat.Api.Users;

/// <summary>How an account became an admin.</summary>
public static class GrantedVia
{
    /// <summary>The one-time bootstrap (<c>grant-admin</c>), while the store has no admin.</summary>
    public const string Bootstrap = "bootstrap";

    /// <summary>An admin granted it.</summary>
    public const string Admin = "admin";

    /// <summary>Supabase confirmed the email, and <c>Auth:Admins</c> names it.</summary>
    public const string Config = "config";
}

public sealed record AdminGrant(Guid Id, Guid UserId, Guid? GrantedBy, string Via, DateTimeOffset CreatedAt);

/// <summary>The outcome of making an account an admin.</summary>
public abstract record GrantOutcome
{
    public sealed record Granted(AdminGrant Grant) : GrantOutcome;

    public sealed record NoSuchAccount : GrantOutcome;

    public sealed record AlreadyAdmin : GrantOutcome;

    /// <summary>The bootstrap was refused: the store has an admin already, or had its bootstrap.</summary>
    public sealed record AdminExists : GrantOutcome;
}

/// <summary>
/// Makes accounts admins and records it (admin_grants: who, by whom, how, when), role and record in one transaction.
/// Registering an email never makes an admin: the first comes from the bootstrap, later ones from an admin.
/// </summary>
public sealed class AdminGrants(AiChatDb db, UserStore users, TimeProvider time)
{
    private const string Columns = "id, user_id AS UserId, granted_by AS GrantedBy, via, created_at AS CreatedAt";

    /// <summary>The first admin, by email; refused once any account is an admin (or a bootstrap was ever recorded).</summary>
    public async Task<GrantOutcome> BootstrapAsync(string email, CancellationToken cancellationToken = default)
    {
        var user = await users.FindByEmailAsync(email, cancellationToken);
        if (user is null)
        {
            return new GrantOutcome.NoSuchAccount();
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        if (await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM users WHERE role = 'admin'", cancellationToken: cancellationToken)) > 0)
        {
            return new GrantOutcome.AdminExists();
        }

        try
        {
            return await GrantAsync(user.Id, null, GrantedVia.Bootstrap, cancellationToken);
        }
        catch (Exception ex) when (DbErrors.IsUniqueViolation(ex))
        {
            return new GrantOutcome.AdminExists();
        }
    }

    /// <summary>Makes the account an admin; <paramref name="grantedBy"/> is the admin who did, if any.</summary>
    public async Task<GrantOutcome> GrantAsync(Guid userId, Guid? grantedBy, string via, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        // Both stores keep microseconds: what the grant answers is what it reads back.
        var grant = new AdminGrant(Guid.NewGuid(), userId, grantedBy, via, now.AddTicks(-(now.Ticks % 10)));
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE users SET role = @admin, updated_at = @CreatedAt WHERE id = @UserId AND role <> @admin",
            new { admin = Roles.Admin, grant.UserId, grant.CreatedAt }, transaction, cancellationToken: cancellationToken));
        if (changed == 0)
        {
            await transaction.RollbackAsync(cancellationToken);
            return await users.FindAsync(userId, cancellationToken) is null ? new GrantOutcome.NoSuchAccount() : new GrantOutcome.AlreadyAdmin();
        }

        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO admin_grants (id, user_id, granted_by, via, created_at) VALUES (@Id, @UserId, @GrantedBy, @Via, @CreatedAt)",
            grant, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return new GrantOutcome.Granted(grant);
    }

    /// <summary>Every grant, oldest first.</summary>
    public async Task<IReadOnlyList<AdminGrant>> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<AdminGrant>(new CommandDefinition(
            $"SELECT {Columns} FROM admin_grants ORDER BY created_at, id", cancellationToken: cancellationToken));
        return rows.AsList();
    }
}
