using AiChat.Api.Users;

namespace AiChat.Api.Agents;

/// <summary>
/// The agent's part of an account: every new account gets its agent (with default blocks; on Letta, a Letta agent too);
/// its health is whether the runtime answers, its export the blocks, archival passages and the memory change log (deleting the agent deletes the log with it). Also the agent's summary
/// that <c>/api/v1/auth/me</c> shows.
/// </summary>
public sealed class AgentAccount(AgentService agents, MemoryStore memory) : IAccountComponent, IAgentSummaries
{
    public string Name => "agent";

    public int Order => AccountOrder.Agent;

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) =>
        agents.CreateAsync(account.UserId, account.Name, cancellationToken);

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => agents.DeleteAsync(userId, cancellationToken);

    public async Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        var agent = await agents.FindAsync(userId, cancellationToken);
        if (agent is null)
        {
            return AccountCheck.Missing("The account has no agent.");
        }

        try
        {
            await agents.RuntimeFor(agent).GetContextAsync(agent, cancellationToken);
            return AccountCheck.Fine;
        }
        catch (Exception ex) when (ex is AgentRuntimeUnavailableException or HttpRequestException)
        {
            return new(false, "unreachable", $"The {agent.Runtime} runtime did not answer.");
        }
    }

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var agent = await agents.FindAsync(userId, cancellationToken);
        if (agent is null)
        {
            return new ExportSection(null);
        }

        var runtime = agents.RuntimeFor(agent);
        var blocks = await runtime.GetBlocksAsync(agent, cancellationToken);
        var passages = await runtime.ListArchivalAsync(agent, null, 10_000, cancellationToken);
        var changes = await memory.ListChangesAsync(agent.Id, null, null, int.MaxValue, cancellationToken);
        return new ExportSection(new
        {
            id = agent.Id,
            runtime = agent.Runtime,
            model = agent.Model,
            created_at = agent.CreatedAt,
            blocks = blocks.Select(BlockDto.From),
            archival_passages = passages.Select(PassageDto.From),
            memory_changes = changes.Select(MemoryChangeDto.From),
        });
    }

    public async Task<AgentSummary?> FindAsync(Guid userId, CancellationToken cancellationToken) =>
        await agents.FindAsync(userId, cancellationToken) is { } agent
            ? new AgentSummary(agent.Id, agent.Runtime, await agents.StatusAsync(agent, cancellationToken))
            : null;
}
