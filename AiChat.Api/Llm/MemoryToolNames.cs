using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>
/// The memory tools' names (Letta's vocabulary): the built-in agent offers tools by these names, and the offline model
/// recognises them in a call's tool list, as a real model reads tool definitions.
/// </summary>
public static class MemoryToolNames
{
    public const string Append = "core_memory_append";
    public const string Replace = "core_memory_replace";
    public const string ArchivalInsert = "archival_memory_insert";
    public const string ArchivalSearch = "archival_memory_search";
    public const string ConversationSearch = "conversation_search";

    public static bool ChangesBlock(string tool) => tool is Append or Replace;

    /// <summary>A tool call's argument as text, or null when the call does not have it.</summary>
    public static string? Argument(FunctionCallContent call, string name) =>
        call.Arguments is not null && call.Arguments.TryGetValue(name, out var value) ? value?.ToString() : null;
}
