using AiChat.Api.Agents;
using AiChat.Api.Users;

namespace AiChat.Api.Chat;

public static class ChatExtensions
{
    /// <summary>
    /// Chat: the transcript (also what agents read, as <see cref="ITranscript"/>), turns started by the turn service, run by
    /// the queue's workers, followed as event streams, and recovered when their instance died; per-user limits on
    /// messages and open streams.
    /// </summary>
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<ChatOptions>(builder.Configuration.GetSection(ChatOptions.Section));
        builder.Services.AddSingleton<MessageStore>();
        builder.Services.AddSingleton<ITranscript>(sp => sp.GetRequiredService<MessageStore>());
        builder.Services.AddSingleton<TurnStore>();
        builder.Services.AddSingleton<ConversationStore>();
        builder.Services.AddSingleton<TurnHub>();
        builder.Services.AddSingleton<TurnFollower>();
        builder.Services.AddSingleton<TurnRunner>();
        builder.Services.AddSingleton<TurnQueue>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnQueue>());
        builder.Services.AddSingleton<TurnService>();
        builder.Services.AddSingleton<TurnRecovery>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnRecovery>());
        builder.Services.AddSingleton<IAccountComponent, ChatAccount>();
        builder.Services.AddChatRateLimits();
        return builder;
    }
}
