using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Agents;

/// <summary>
/// The tools the built-in agent offers its model, run on the server against the agent's own memory:
/// edit a core block (limits enforced), insert into and search archival memory, search the conversation.
/// Block edits are atomic against the block's current value and recorded in the change log with the turn's id.
/// A tool that cannot do what was asked answers with a text starting "Error" for the model to read; it never throws.
/// </summary>
public sealed class MemoryTools(MemoryStore store, ITranscript transcript, AgentRecord agent, Guid turnId, Guid? conversationId, TimeProvider time)
{
    public const string Append = MemoryToolNames.Append;
    public const string Replace = MemoryToolNames.Replace;
    public const string ArchivalInsert = MemoryToolNames.ArchivalInsert;
    public const string ArchivalSearch = MemoryToolNames.ArchivalSearch;
    public const string ConversationSearch = MemoryToolNames.ConversationSearch;

    /// <summary>
    /// The tools, made once (their JSON schemas are derived by reflection): each call runs on the <see cref="MemoryTools"/>
    /// of its turn, which <see cref="Arguments"/> puts in the call's context.
    /// </summary>
    public static IReadOnlyList<AIFunction> Functions { get; } =
    [
        Function(nameof(AppendAsync), Append, "Append a line to one of your core memory blocks (e.g. label 'human' for facts about the user)."),
        Function(nameof(ReplaceAsync), Replace, "Replace text in a core memory block; old_content must occur in the block exactly."),
        Function(nameof(InsertAsync), ArchivalInsert, "Save a passage to long-term archival memory."),
        Function(nameof(SearchArchivalAsync), ArchivalSearch, "Search long-term archival memory by keywords."),
        Function(nameof(SearchConversationAsync), ConversationSearch, "Search all of your past conversations with the user by keywords; each hit says which conversation it is from."),
    ];

    /// <summary>A call's arguments, with this turn's tools as the instance its function runs on.</summary>
    public AIFunctionArguments Arguments(IDictionary<string, object?> values) =>
        new(values) { Context = new Dictionary<object, object?> { [typeof(MemoryTools)] = this } };

    private static AIFunction Function(string method, string name, string description) =>
        AIFunctionFactory.Create(
            typeof(MemoryTools).GetMethod(method, BindingFlags.Instance | BindingFlags.NonPublic)!,
            arguments => arguments.Context?[typeof(MemoryTools)] ?? throw new InvalidOperationException("A memory tool runs with its turn's MemoryTools."),
            new AIFunctionFactoryOptions { Name = name, Description = description });

    private Task<string> AppendAsync([Description("The block's label")] string label, [Description("The text to append")] string content, CancellationToken cancellationToken) =>
        SaveAsync(label, () => store.AppendAsync(agent.Id, label, content, MemoryChangeSource.Tool(turnId, conversationId), time.GetUtcNow(), cancellationToken));

    private Task<string> ReplaceAsync(string label, [Description("Exact text to replace")] string old_content, [Description("The new text")] string new_content, CancellationToken cancellationToken) =>
        SaveAsync(label, () => store.EditBlockAsync(
            agent.Id, label, BlockEdit.Replacing(label, old_content, new_content), MemoryChangeSource.Tool(turnId, conversationId), time.GetUtcNow(), cancellationToken));

    private async Task<string> InsertAsync(string content, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            return "Error: the passage is empty.";
        }

        var passage = await store.InsertPassageAsync(agent.Id, content.Trim(), turnId, conversationId, time.GetUtcNow(), cancellationToken);
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
        return found.Count == 0
            ? "No message matches."
            : JsonSerializer.Serialize(found.Select(m => $"[conversation {(m.ConversationId == conversationId ? "this one" : $"\"{m.ConversationTitle ?? "untitled"}\" {m.ConversationId}")}] {m.Role} ({m.CreatedAt:yyyy-MM-dd}): {m.Content}"));
    }

    private static async Task<string> SaveAsync(string label, Func<Task<BlockEdit>> edit)
    {
        try
        {
            var edited = await edit();
            return edited.Refusal is { } refusal ? $"Error: {refusal}" : $"The '{label}' block now reads: {edited.Value}";
        }
        catch (UnknownBlockException)
        {
            return $"Error: there is no '{label}' block.";
        }
        catch (MemoryLimitExceededException limit)
        {
            return $"Error: {limit.Message} Shorten or replace existing text instead.";
        }
    }
}
