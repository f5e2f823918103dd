using AiChat.Api.Data;

namespace AiChat.Api.Users;

/// <summary>
/// <c>dotnet run --project AiChat.Api -- grant-admin &lt;email&gt;</c>: the one-time bootstrap of the first admin, run by
/// whoever runs the server, against its store (an existing account; refused once the store has an admin).
/// </summary>
public static class AdminCommand
{
    public const string Name = "grant-admin";

    public static bool IsCommand(string[] args) => args is [Name, ..];

    /// <summary>0 granted, 1 refused, 2 wrong usage.</summary>
    public static async Task<int> RunAsync(WebApplication app, string[] args)
    {
        if (args is not [_, var email] || string.IsNullOrWhiteSpace(email))
        {
            await Console.Error.WriteLineAsync($"Usage: {Name} <email of an existing account>");
            return 2;
        }

        await app.Services.GetRequiredService<StoreMigrator>().MigrateAsync();
        var outcome = await app.Services.GetRequiredService<AdminGrants>().BootstrapAsync(email.Trim());
        var (code, message) = outcome switch
        {
            GrantOutcome.Granted granted => (0, $"Account {granted.Grant.UserId} is now an admin. Grant further admins with POST /api/v1/admin/users/{{id}}/admin."),
            GrantOutcome.NoSuchAccount => (1, "No account has this email: register it first, then run this again."),
            _ => (1, "The store has an admin already: an admin grants further admins with POST /api/v1/admin/users/{id}/admin."),
        };
        await (code == 0 ? Console.Out : Console.Error).WriteLineAsync(message);
        return code;
    }
}
