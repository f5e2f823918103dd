using AiChat.Api.Users;

namespace AiChat.Api.Chat;

/// <summary>
/// The conversation's part of an account: its export is every message, oldest first. Nothing to provision, and the
/// messages go with the profile row (foreign keys cascade).
/// </summary>
public sealed class ChatAccount(MessageStore store) : IAccountComponent
{
    public string Name => "conversation";

    public int Order => AccountOrder.Chat;

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(AccountCheck.Fine);

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
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
        return new ExportSection(new { messages });
    }
}
