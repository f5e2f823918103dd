using AiChat.Api.Billing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace AiChat.Api.Users;

public static class UsersExtensions
{
    /// <summary>
    /// Accounts: the users table, the account lifecycle with the components this feature owns (profile, billing account,
    /// and in the full profile the LiteLLM user), personal API keys, the account's own endpoints and the admin's view of all accounts.
    /// Other features add their own <see cref="IAccountComponent"/>; Auth provides the <see cref="ISignInSessions"/>.
    /// </summary>
    public static IHostApplicationBuilder AddUsers(this IHostApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<UserStore>();
        builder.Services.AddSingleton<AdminGrants>();
        builder.Services.AddSingleton<AccountLifecycle>();
        builder.Services.AddSingleton<IAccountComponent, ProfileAccount>();
        builder.Services.AddSingleton<IAccountComponent, BillingAccount>();
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddSingleton<IAccountComponent, ApiKeysAccount>();
        if ((builder.Configuration.GetSection(LiteLlmOptions.Section).Get<LiteLlmOptions>() ?? new LiteLlmOptions()).Enabled)
        {
            builder.Services.AddSingleton<IAccountComponent, LiteLlmAccount>();
        }

        return builder;
    }
}
