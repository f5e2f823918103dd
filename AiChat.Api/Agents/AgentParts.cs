using AiChat.Api.Auth;
using AiChat.Api.Users;

namespace AiChat.Api.Agents;

/// <summary>Provisioning: every new account gets its agent (with default blocks; on Letta, a Letta agent too).</summary>
public sealed class AgentStep(AgentService agents) : IProvisioningStep
{
    public string Name => "agent";

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) =>
        agents.CreateAsync(account.UserId, account.Name, cancellationToken);

    public Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken) => agents.DeleteAsync(userId, cancellationToken);
}

/// <summary>The agent's part of the account's health and export: reachable runtime, blocks, archival passages.</summary>
public sealed class AgentPart(AgentService agents) : IAccountPart
{
    public string Name => "agent";

    public async Task<AccountPartHealth> CheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        var agent = await agents.FindAsync(userId, cancellationToken);
        if (agent is null)
        {
            return new(false, "missing", "The account has no agent.");
        }

        try
        {
            await agents.RuntimeFor(agent).GetContextAsync(agent, cancellationToken);
            return new(true, "ok");
        }
        catch (Exception ex) when (ex is AgentRuntimeUnavailableException or HttpRequestException)
        {
            return new(false, "unreachable", $"The {agent.Runtime} runtime did not answer.");
        }
    }

    public async Task<object?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var agent = await agents.FindAsync(userId, cancellationToken);
        if (agent is null)
        {
            return null;
        }

        var runtime = agents.RuntimeFor(agent);
        var blocks = await runtime.GetBlocksAsync(agent, cancellationToken);
        var passages = await runtime.ListArchivalAsync(agent, null, 10_000, cancellationToken);
        return new
        {
            id = agent.Id,
            runtime = agent.Runtime,
            model = agent.Model,
            created_at = agent.CreatedAt,
            blocks = blocks.Select(BlockDto.From),
            archival_passages = passages.Select(PassageDto.From),
        };
    }
}
