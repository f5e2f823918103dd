using AiChat.Api.Agents;
using AiChat.Api.Users;

namespace AiChat.Api.Chat;

public static class ChatExtensions
{
    /// <summary>
    /// Chat: the transcript (also what agents read, as <see cref="ITranscript"/>), turns started by the turn service, run by
    /// the queue's workers, followed as event streams, and recovered when their instance died.
    /// </summary>
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<ChatOptions>(builder.Configuration.GetSection(ChatOptions.Section));
        builder.Services.AddSingleton<MessageStore>();
        builder.Services.AddSingleton<ITranscript>(sp => sp.GetRequiredService<MessageStore>());
        builder.Services.AddSingleton<TurnStore>();
        builder.Services.AddSingleton<TurnHub>();
        builder.Services.AddSingleton<TurnFollower>();
        builder.Services.AddSingleton<TurnRunner>();
        builder.Services.AddSingleton<TurnQueue>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnQueue>());
        builder.Services.AddSingleton<TurnService>();
        builder.Services.AddSingleton<TurnRecovery>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TurnRecovery>());
        builder.Services.AddSingleton<IAccountPart, ChatPart>();
        return builder;
    }
}

/// <summary>The conversation's part of the account's export: every message, oldest first.</summary>
public sealed class ChatPart(MessageStore store) : IAccountPart
{
    public string Name => "conversation";

    public Task<AccountPartHealth> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult(new AccountPartHealth(true, "ok"));

    public async Task<object?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var messages = new List<MessageDto>();
        var before = long.MaxValue;
        while (true)
        {
            var page = await store.HistoryAsync(userId, before, 500, cancellationToken);
            messages.AddRange(page.Select(MessageDto.From));
            if (page.Count < 500)
            {
                break;
            }

            before = page[^1].Seq;
        }

        messages.Reverse();
        return new { messages };
    }
}
