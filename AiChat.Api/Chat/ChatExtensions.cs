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
        builder.Services.AddSingleton<IAccountPart, ChatPart>();
        return builder;
    }
}

/// <summary>The conversation's part of the account's export: every message, oldest first.</summary>
public sealed class ChatPart(TurnStore store) : IAccountPart
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
