using AiChat.Api.Users;

namespace AiChat.Api.Chat;

public static class ChatExtensions
{
    /// <summary>Chat turns: the store, the server-side executor, recovery of lost turns, and event streams.</summary>
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<ChatOptions>(builder.Configuration.GetSection(ChatOptions.Section));
        builder.Services.AddSingleton<TurnStore>();
        builder.Services.AddSingleton<TurnHub>();
        builder.Services.AddSingleton<TurnFollower>();
        builder.Services.AddSingleton<TurnExecutor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnExecutor>());
        builder.Services.AddSingleton<TurnRecovery>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnRecovery>());
        builder.Services.AddSingleton<IAccountComponent, ChatAccount>();
        return builder;
    }
}
