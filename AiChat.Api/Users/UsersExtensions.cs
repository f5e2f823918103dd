namespace AiChat.Api.Users;

public static class UsersExtensions
{
    /// <summary>The account's own endpoints (profile, health, export, delete) and the admin's view of all accounts.</summary>
    public static IHostApplicationBuilder AddUsers(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IAccountPart, ProfilePart>();
        return builder;
    }
}
