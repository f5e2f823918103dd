using System.ComponentModel;
using System.Text.Json;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Agents;

/// <summary>
/// The tools the built-in agent offers its model, run on the server against the agent's own memory:
/// edit a core block (limits enforced), insert into and search archival memory, search the conversation.
/// A tool that cannot do what was asked answers with a text starting "Error" for the model to read; it never throws.
/// </summary>
public sealed class MemoryTools(MemoryStore store, ITranscript transcript, AgentRecord agent, TimeProvider time)
{
    public const string Append = MemoryToolNames.Append;
    public const string Replace = MemoryToolNames.Replace;
    public const string ArchivalInsert = MemoryToolNames.ArchivalInsert;
    public const string ArchivalSearch = MemoryToolNames.ArchivalSearch;
    public const string ConversationSearch = MemoryToolNames.ConversationSearch;

    public IReadOnlyList<AIFunction> All() =>
    [
        AIFunctionFactory.Create(AppendAsync, Append, "Append a line to one of your core memory blocks (e.g. label 'human' for facts about the user)."),
        AIFunctionFactory.Create(ReplaceAsync, Replace, "Replace text in a core memory block; old_content must occur in the block exactly."),
        AIFunctionFactory.Create(InsertAsync, ArchivalInsert, "Save a passage to long-term archival memory."),
        AIFunctionFactory.Create(SearchArchivalAsync, ArchivalSearch, "Search long-term archival memory by keywords."),
        AIFunctionFactory.Create(SearchConversationAsync, ConversationSearch, "Search the whole past conversation by keywords."),
    ];

    private async Task<string> AppendAsync([Description("The block's label")] string label, [Description("The text to append")] string content, CancellationToken cancellationToken)
    {
        var block = (await store.GetBlocksAsync(agent.Id, cancellationToken)).FirstOrDefault(b => b.Label == label);
        if (block is null)
        {
            return $"Error: there is no '{label}' block.";
        }

        var value = string.IsNullOrEmpty(block.Value) ? content.Trim() : $"{block.Value.TrimEnd()}\n{content.Trim()}";
        return await SaveAsync(label, value, cancellationToken);
    }

    private async Task<string> ReplaceAsync(string label, [Description("Exact text to replace")] string old_content, [Description("The new text")] string new_content, CancellationToken cancellationToken)
    {
        var block = (await store.GetBlocksAsync(agent.Id, cancellationToken)).FirstOrDefault(b => b.Label == label);
        if (block is null)
        {
            return $"Error: there is no '{label}' block.";
        }

        if (string.IsNullOrEmpty(old_content) || !block.Value.Contains(old_content, StringComparison.Ordinal))
        {
            return $"Error: the '{label}' block does not contain that text.";
        }

        return await SaveAsync(label, block.Value.Replace(old_content, new_content, StringComparison.Ordinal), cancellationToken);
    }

    private async Task<string> InsertAsync(string content, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            return "Error: the passage is empty.";
        }

        var passage = await store.InsertPassageAsync(agent.Id, content.Trim(), time.GetUtcNow(), cancellationToken);
        return $"Saved passage {passage.Id}.";
    }

    private async Task<string> SearchArchivalAsync(string query, CancellationToken cancellationToken)
    {
        var found = await store.ListPassagesAsync(agent.Id, query, 5, cancellationToken);
        return found.Count == 0 ? "No passage matches." : JsonSerializer.Serialize(found.Select(p => p.Content));
    }

    private async Task<string> SearchConversationAsync(string query, CancellationToken cancellationToken)
    {
        var found = await transcript.SearchAsync(agent.UserId, query, 5, cancellationToken);
        return found.Count == 0 ? "No message matches." : JsonSerializer.Serialize(found.Select(m => $"{m.Role} ({m.CreatedAt:yyyy-MM-dd}): {m.Content}"));
    }

    private async Task<string> SaveAsync(string label, string value, CancellationToken cancellationToken)
    {
        try
        {
            await store.UpdateBlocksAsync(agent.Id, [new BlockUpdate(label, value)], time.GetUtcNow(), cancellationToken);
            return $"The '{label}' block now reads: {value}";
        }
        catch (MemoryLimitExceededException limit)
        {
            return $"Error: {limit.Message} Shorten or replace existing text instead.";
        }
    }
}
