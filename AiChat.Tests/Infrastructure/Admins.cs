using AiChat.Api.Users;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// An admin for tests that need one: a real account from the register endpoint, made the store's first admin by the
/// bootstrap that <c>grant-admin</c> runs (run in-process here; <see cref="Auth.AdminBootstrapTests"/> runs the command).
/// </summary>
public static class Admins
{
    public static async Task<TokenPair> RegisterAdminAsync(this HttpClient client, ApiFactory api, string? email = null)
    {
        email ??= Accounts.NewEmail("admin");
        var pair = await client.RegisterAsync(email);
        var outcome = await api.Services.GetRequiredService<AdminGrants>().BootstrapAsync(email, TestContext.Current.CancellationToken);
        Assert.IsType<GrantOutcome.Granted>(outcome);
        return pair;
    }
}
