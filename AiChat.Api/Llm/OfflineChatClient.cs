using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>
/// The offline model: a deterministic <see cref="IChatClient"/> that needs no network. It says plainly that it is the
/// offline model, and it drives the same tool-calling path as a real model: it saves a name, a preference or a
/// "remember that…" with the memory tools, answers "what is my name?" from the memory blocks in its prompt, and looks
/// things up with the search tools. It is a development default, never a stand-in for a configured endpoint that fails.
/// </summary>
public sealed partial class OfflineChatClient(TokenCounter tokens) : IChatClient
{
    public const string ModelName = "aichat-offline";
    public const string Label = "[offline model]";

    /// <summary>Put in a summarisation request's system prompt, so the offline model writes a summary.</summary>
    public const string SummarizeMarker = "[summarize]";

    /// <summary>Put in a title request's system prompt, so the offline model makes a title: the first words of the user's message.</summary>
    public const string TitleMarker = "[title]";

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var conversation = messages.ToList();
        var responseId = $"offline-{Guid.NewGuid():N}";
        var reply = Decide(conversation, options);
        var promptTokens = tokens.Count(conversation);

        if (reply.Call is { } call)
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, [call]) { ResponseId = responseId, ModelId = ModelName, FinishReason = ChatFinishReason.ToolCalls };
            yield return Usage(responseId, promptTokens, tokens.Count(call.Name) + tokens.Count(JsonSerializer.Serialize(call.Arguments)));
            yield break;
        }

        var text = reply.Text!;
        var limit = options?.MaxOutputTokens ?? int.MaxValue;
        if (tokens.Count(text) > limit)
        {
            text = tokens.Truncate(text, limit);
        }

        foreach (Match word in Regex.Matches(text, @"\S+\s*"))
        {
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
            yield return new ChatResponseUpdate(ChatRole.Assistant, word.Value) { ResponseId = responseId, ModelId = ModelName };
        }

        yield return new ChatResponseUpdate(ChatRole.Assistant, []) { ResponseId = responseId, ModelId = ModelName, FinishReason = ChatFinishReason.Stop };
        yield return Usage(responseId, promptTokens, tokens.Count(text));
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("aichat-offline", null, ModelName)
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
    }

    private static ChatResponseUpdate Usage(string responseId, int prompt, int completion) =>
        new(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = prompt, OutputTokenCount = completion, TotalTokenCount = prompt + completion })])
        {
            ResponseId = responseId,
            ModelId = ModelName,
        };

    private static (string? Text, FunctionCallContent? Call) Decide(List<ChatMessage> conversation, ChatOptions? options)
    {
        var system = string.Join("\n", conversation.Where(m => m.Role == ChatRole.System).Select(m => m.Text));
        if (system.Contains(SummarizeMarker, StringComparison.Ordinal))
        {
            return (Summarize(conversation.Where(m => m.Role != ChatRole.System)), null);
        }

        if (system.Contains(TitleMarker, StringComparison.Ordinal))
        {
            return (Title(conversation.FirstOrDefault(m => m.Role == ChatRole.User)?.Text ?? ""), null);
        }

        var tools = (options?.Tools ?? []).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var last = conversation.LastOrDefault();
        if (last?.Role == ChatRole.Tool)
        {
            return (AfterTool(conversation), null);
        }

        var said = conversation.LastOrDefault(m => m.Role == ChatRole.User)?.Text?.Trim() ?? "";
        var human = Block(system, "human");
        var callId = $"call_{conversation.Count}";

        if (NamePattern().Match(said) is { Success: true } name && tools.Contains(MemoryToolNames.Replace) && tools.Contains(MemoryToolNames.Append))
        {
            var value = Clean(name.Groups["name"].Value);
            var existing = NameLine().Match(human);
            return existing.Success
                ? (null, new FunctionCallContent(callId, MemoryToolNames.Replace, new Dictionary<string, object?> { ["label"] = "human", ["old_content"] = existing.Value.Trim(), ["new_content"] = $"Name: {value}" }))
                : (null, new FunctionCallContent(callId, MemoryToolNames.Append, new Dictionary<string, object?> { ["label"] = "human", ["content"] = $"Name: {value}" }));
        }

        if (LikePattern().Match(said) is { Success: true } like && tools.Contains(MemoryToolNames.Append))
        {
            return (null, new FunctionCallContent(callId, MemoryToolNames.Append, new Dictionary<string, object?> { ["label"] = "human", ["content"] = $"Likes: {Clean(like.Groups["what"].Value)}" }));
        }

        if (RecallPattern().Match(said) is { Success: true } recall && tools.Contains(MemoryToolNames.ArchivalSearch))
        {
            return (null, new FunctionCallContent(callId, MemoryToolNames.ArchivalSearch, new Dictionary<string, object?> { ["query"] = Clean(recall.Groups["what"].Value) }));
        }

        if (SearchPattern().Match(said) is { Success: true } search && tools.Contains(MemoryToolNames.ConversationSearch))
        {
            return (null, new FunctionCallContent(callId, MemoryToolNames.ConversationSearch, new Dictionary<string, object?> { ["query"] = Clean(search.Groups["what"].Value) }));
        }

        if (RememberPattern().Match(said) is { Success: true } remember && tools.Contains(MemoryToolNames.ArchivalInsert))
        {
            return (null, new FunctionCallContent(callId, MemoryToolNames.ArchivalInsert, new Dictionary<string, object?> { ["content"] = Clean(remember.Groups["what"].Value) }));
        }

        if (AskNamePattern().IsMatch(said))
        {
            var known = NameLine().Match(human);
            return (known.Success
                ? $"{Label} Your name is {known.Groups["name"].Value.Trim()}. I have it in my memory."
                : $"{Label} I don't know your name yet. Tell me (\"my name is …\") and I'll remember it.", null);
        }

        if (AskLikesPattern().IsMatch(said))
        {
            var likes = LikesLine().Matches(human).Select(m => m.Groups["what"].Value.Trim()).ToList();
            return (likes.Count > 0
                ? $"{Label} From my memory, you like: {string.Join("; ", likes)}."
                : $"{Label} You haven't told me what you like yet.", null);
        }

        var echo = said.Length > 200 ? said[..200] + "…" : said;
        return ($"{Label} I'm AiChat's offline model: I run without any LLM, so I can only remember things you tell me (\"my name is …\", \"I like …\", \"remember that …\") and answer from memory. You said: \"{echo}\"", null);
    }

    private static string AfterTool(List<ChatMessage> conversation)
    {
        var calls = conversation.SelectMany(m => m.Contents.OfType<FunctionCallContent>()).ToDictionary(c => c.CallId);
        var results = conversation.AsEnumerable().Reverse().TakeWhile(m => m.Role == ChatRole.Tool).SelectMany(m => m.Contents.OfType<FunctionResultContent>()).ToList();
        var answers = new List<string>();
        foreach (var result in results)
        {
            var text = result.Result?.ToString() ?? "";
            var call = calls.GetValueOrDefault(result.CallId);
            var failed = text.StartsWith("Error", StringComparison.Ordinal);
            answers.Add((call?.Name, failed) switch
            {
                (_, true) => $"I couldn't save that: {text}",
                (MemoryToolNames.Append or MemoryToolNames.Replace, _) => $"Got it. I've noted \"{MemoryToolNames.Argument(call!, "content") ?? MemoryToolNames.Argument(call!, "new_content")}\" in my memory.",
                (MemoryToolNames.ArchivalInsert, _) => "Noted. I've saved that to my long-term memory.",
                (MemoryToolNames.ArchivalSearch or MemoryToolNames.ConversationSearch, _) => text.Length == 0 || text == "[]" || text.StartsWith("No ", StringComparison.Ordinal)
                    ? "I don't remember anything about that."
                    : $"Here is what I remember: {text}",
                _ => "Done.",
            });
        }

        return $"{Label} {string.Join(" ", answers)}";
    }

    private static string Summarize(IEnumerable<ChatMessage> messages)
    {
        var lines = messages.Select(m => $"{m.Role.Value}: {First(m.Text, 60)}").ToList();
        return $"{Label} summary of {lines.Count} earlier message(s): {string.Join(" | ", lines.TakeLast(20))}";
    }

    /// <summary>A deterministic title: the message's first six words, without trailing punctuation, at most 60 characters.</summary>
    private static string Title(string message)
    {
        var words = Regex.Matches(message, @"[\p{L}\p{N}][\p{L}\p{N}'\-]*").Select(m => m.Value).Take(6).ToList();
        if (words.Count == 0)
        {
            return "New conversation";
        }

        var title = string.Join(' ', words);
        title = char.ToUpperInvariant(title[0]) + title[1..];
        return title.Length <= 60 ? title : title[..60].TrimEnd();
    }

    private static string Block(string system, string label)
    {
        var start = system.IndexOf($"<{label} ", StringComparison.Ordinal);
        var end = system.IndexOf($"</{label}>", StringComparison.Ordinal);
        return start < 0 || end < start ? "" : system[start..end];
    }

    private static string First(string text, int chars) => text.Length <= chars ? text : text[..chars] + "…";

    private static string Clean(string value) => value.Trim().TrimEnd('.', '!', '?', ',', ';').Trim();

    [GeneratedRegex(@"\b(?i:my name is|call me)\s+(?<name>[\p{L}][\p{L}'\-]{0,29}(?:\s+\p{Lu}[\p{L}'\-]{0,29}){0,2})", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"\bI\s+(?:really\s+)?(?:like|love|prefer|enjoy)\s+(?<what>[^.!?\n]{1,120})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex LikePattern();

    [GeneratedRegex(@"\bremember\s+(?:that\s+)?(?<what>[^\n]{3,400})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RememberPattern();

    [GeneratedRegex(@"\b(?:what did (?:i|we) (?:say|tell you|talk) about|search (?:our|my|the) conversations? for)\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SearchPattern();

    [GeneratedRegex(@"\bwhat do you (?:know|remember) about\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RecallPattern();

    [GeneratedRegex(@"\bwhat(?:'s| is)\s+my\s+name\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AskNamePattern();

    [GeneratedRegex(@"\bwhat do i (?:like|love|enjoy)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex AskLikesPattern();

    [GeneratedRegex(@"^Name:\s*(?<name>.+)$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex NameLine();

    [GeneratedRegex(@"^Likes:\s*(?<what>.+)$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex LikesLine();
}
