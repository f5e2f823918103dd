namespace AiChat.Api.Agents;

/// <summary>
/// Memory edits from outside a turn that must be atomic against a block's current value (the MCP server's append and
/// replace): on the built-in runtime one transaction from read to write (<see cref="MemoryStore.EditBlockAsync"/>); on
/// Letta, read then written through its API (Letta has no conditional write), recorded in the change log either way.
/// </summary>
public sealed class AgentMemory(AgentService agents, MemoryStore store, TimeProvider time)
{
    /// <exception cref="UnknownBlockException">The agent has no such block.</exception>
    /// <exception cref="MemoryLimitExceededException">The edited value is over the block's limit; nothing changed.</exception>
    public async Task<BlockEdit> EditBlockAsync(AgentRecord agent, string label, Func<string, BlockEdit> edit, MemoryChangeSource source, CancellationToken cancellationToken)
    {
        if (agent.Runtime == AgentRuntimes.BuiltIn)
        {
            return await store.EditBlockAsync(agent.Id, label, edit, source, time.GetUtcNow(), cancellationToken);
        }

        var runtime = agents.RuntimeFor(agent);
        var block = (await runtime.GetBlocksAsync(agent, cancellationToken)).FirstOrDefault(b => b.Label == label) ?? throw new UnknownBlockException(label);
        var edited = edit(block.Value);
        if (edited.Value is { } value)
        {
            await runtime.UpdateBlocksAsync(agent, [new BlockUpdate(label, value, source)], cancellationToken);
        }

        return edited;
    }

    /// <summary>Appends a line to a block, as the agent's own append tool does.</summary>
    public Task<BlockEdit> AppendAsync(AgentRecord agent, string label, string text, MemoryChangeSource source, CancellationToken cancellationToken) =>
        EditBlockAsync(agent, label, BlockEdit.Appending(text), source, cancellationToken);

    /// <summary>Replaces text in a block; refused (nothing changes) when the block does not contain it.</summary>
    public Task<BlockEdit> ReplaceAsync(AgentRecord agent, string label, string oldText, string newText, MemoryChangeSource source, CancellationToken cancellationToken) =>
        EditBlockAsync(agent, label, BlockEdit.Replacing(label, oldText, newText), source, cancellationToken);
}
