using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>
/// The offline model: a deterministic <see cref="IChatClient"/> that needs no network. It says plainly that it is the
/// offline model, and it drives the same tool-calling path as a real model: it saves a name, a preference or a
/// "remember that…" with the memory tools, answers "what is my name?" from the memory blocks in its prompt, and looks
/// things up with the search tools. It understands English and Russian (<see cref="OfflineIntents"/>) and answers in
/// the language it was spoken to in (<see cref="OfflinePhrases"/>). Its reply streams one word per update; the pace a
/// person sees is set apart, in the pipeline (<see cref="OfflinePacingChatClient"/>). It is a development default,
/// never a stand-in for a configured endpoint that fails.
/// </summary>
public sealed partial class OfflineChatClient(TokenCounter tokens) : IChatClient
{
    public const string ModelName = "aichat-offline";
    public const string Label = "[offline model]";
    public const string RussianLabel = "[офлайн-модель]";

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

        foreach (Match word in Words().Matches(text))
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
            return (Summarize(conversation.Where(m => m.Role != ChatRole.System).ToList()), null);
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

        var said = LastUserText(conversation);
        var say = OfflinePhrases.For(OfflineIntents.LanguageOf(said));
        var human = Block(system, "human");
        var callId = $"call_{conversation.Count}";
        foreach (var intent in OfflineIntents.Read(said))
        {
            (string? Text, FunctionCallContent? Call)? reply = intent.Kind switch
            {
                OfflineIntentKind.SetName when tools.Contains(MemoryToolNames.Replace) && tools.Contains(MemoryToolNames.Append) => NameLine().Match(human) is { Success: true } existing
                    ? (null, new FunctionCallContent(callId, MemoryToolNames.Replace, new Dictionary<string, object?> { ["label"] = "human", ["old_content"] = existing.Value.Trim(), ["new_content"] = $"{say.NameField}: {intent.Value}" }))
                    : (null, new FunctionCallContent(callId, MemoryToolNames.Append, new Dictionary<string, object?> { ["label"] = "human", ["content"] = $"{say.NameField}: {intent.Value}" })),
                OfflineIntentKind.Like when tools.Contains(MemoryToolNames.Append) =>
                    (null, new FunctionCallContent(callId, MemoryToolNames.Append, new Dictionary<string, object?> { ["label"] = "human", ["content"] = $"{say.LikesField}: {intent.Value}" })),
                OfflineIntentKind.Recall when tools.Contains(MemoryToolNames.ArchivalSearch) =>
                    (null, new FunctionCallContent(callId, MemoryToolNames.ArchivalSearch, new Dictionary<string, object?> { ["query"] = intent.Value })),
                OfflineIntentKind.Search when tools.Contains(MemoryToolNames.ConversationSearch) =>
                    (null, new FunctionCallContent(callId, MemoryToolNames.ConversationSearch, new Dictionary<string, object?> { ["query"] = intent.Value })),
                OfflineIntentKind.Remember when tools.Contains(MemoryToolNames.ArchivalInsert) =>
                    (null, new FunctionCallContent(callId, MemoryToolNames.ArchivalInsert, new Dictionary<string, object?> { ["content"] = intent.Value })),
                OfflineIntentKind.AskName => (NameLine().Match(human) is { Success: true } known
                    ? $"{say.Label} {say.YourName(known.Groups["name"].Value.Trim())}"
                    : $"{say.Label} {say.NameUnknown}", null),
                OfflineIntentKind.AskLikes => (LikesLine().Matches(human).Select(m => m.Groups["what"].Value.Trim()).ToList() is { Count: > 0 } likes
                    ? $"{say.Label} {say.YouLike(string.Join("; ", likes))}"
                    : $"{say.Label} {say.LikesUnknown}", null),
                _ => null,
            };
            if (reply is { } decided)
            {
                return decided;
            }
        }

        var echo = said.Length > 200 ? said[..200] + "…" : said;
        return ($"{say.Label} {say.Introduction(echo)}", null);
    }

    private static string AfterTool(List<ChatMessage> conversation)
    {
        var say = OfflinePhrases.For(OfflineIntents.LanguageOf(LastUserText(conversation)));
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
                (_, true) => say.NotSaved(text),
                (MemoryToolNames.Append or MemoryToolNames.Replace, _) => say.Noted(MemoryToolNames.Argument(call!, "content") ?? MemoryToolNames.Argument(call!, "new_content") ?? ""),
                (MemoryToolNames.ArchivalInsert, _) => say.Saved,
                (MemoryToolNames.ArchivalSearch or MemoryToolNames.ConversationSearch, _) => text.Length == 0 || text == "[]" || text.StartsWith("No ", StringComparison.Ordinal)
                    ? say.NothingFound
                    : say.Found(text),
                _ => say.Done,
            });
        }

        return $"{say.Label} {string.Join(" ", answers)}";
    }

    private static string Summarize(List<ChatMessage> messages)
    {
        var say = OfflinePhrases.For(OfflineIntents.ScriptOf(string.Concat(messages.Select(m => m.Text))));
        var lines = messages.Select(m => $"{m.Role.Value}: {First(m.Text, 60)}").ToList();
        return $"{say.Label} {say.Summary(lines.Count, string.Join(" | ", lines.TakeLast(20)))}";
    }

    private static string LastUserText(List<ChatMessage> conversation) => conversation.LastOrDefault(m => m.Role == ChatRole.User)?.Text?.Trim() ?? "";

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

    /// <summary>A word and the space after it: the chunks a reply streams in, which add up to the reply exactly.</summary>
    [GeneratedRegex(@"\S+\s*")]
    private static partial Regex Words();

    // The human block's lines in either language, whoever wrote them: "Name: Ana" and "Имя: Анна" answer the same question.
    [GeneratedRegex(@"^(?:Name|Имя):\s*(?<name>.+)$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex NameLine();

    [GeneratedRegex(@"^(?:Likes|Любит):\s*(?<what>.+)$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex LikesLine();
}
