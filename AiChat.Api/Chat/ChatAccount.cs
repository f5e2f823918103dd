using AiChat.Api.Users;

namespace AiChat.Api.Chat;

/// <summary>
/// The conversations' part of an account: a new account gets its default conversation; the export is every
/// conversation with all its messages, oldest first, the answers a regenerate replaced included (each says which
/// answer replaced it). Conversations and messages go with the profile row (foreign keys cascade).
/// </summary>
public sealed class ChatAccount(ConversationStore conversations, MessageStore messages, TimeProvider time) : IAccountComponent
{
    public string Name => "conversation";

    public int Order => AccountOrder.Chat;

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) =>
        await conversations.EnsureDefaultAsync(account.UserId, time.GetUtcNow(), cancellationToken);

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(AccountCheck.Fine);

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var exported = new List<ExportedConversation>();
        foreach (var conversation in await conversations.AllAsync(userId, cancellationToken))
        {
            var all = await messages.ExportAsync(userId, conversation.Id, cancellationToken);
            exported.Add(new ExportedConversation(
                conversation.Id, conversation.Title, conversation.Model, conversation.Archived, conversation.IsDefault, conversation.CreatedAt,
                conversation.LastMessageAt, all.Select(m => new ExportedMessage(MessageDto.From(m.Message), m.ReplacedById)).ToList()));
        }

        return new ExportSection(new { conversations = exported });
    }
}

public sealed record ExportedConversation(
    Guid Id, string? Title, string? Model, bool Archived, bool IsDefault, DateTimeOffset CreatedAt, DateTimeOffset? LastMessageAt, IReadOnlyList<ExportedMessage> Messages);

/// <summary>A message as exported: <paramref name="ReplacedById"/> names the answer that replaced it (a regenerate), else null.</summary>
public sealed record ExportedMessage([property: System.Text.Json.Serialization.JsonIgnore] MessageDto Message, Guid? ReplacedById)
{
    public Guid Id => Message.Id;

    public string Role => Message.Role;

    public string Content => Message.Content;

    public string Status => Message.Status;

    public UsageDto? Usage => Message.Usage;

    public DateTimeOffset CreatedAt => Message.CreatedAt;
}
