namespace AiChat.Api.Users;

/// <summary>The account's agent in brief, as <c>/api/v1/auth/me</c> shows it.</summary>
public sealed record AgentSummary(Guid Id, string Runtime, string Status);

/// <summary>The agent of an account, in brief; implemented by the agent feature, so features that show it need not know agents.</summary>
public interface IAgentSummaries
{
    /// <summary>Null when the account has no agent.</summary>
    Task<AgentSummary?> FindAsync(Guid userId, CancellationToken cancellationToken);
}
