using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.ML.Tokenizers;

namespace AiChat.Api.Llm;

/// <summary>
/// Counts tokens with OpenAI's o200k_base encoding (Microsoft.ML.Tokenizers, offline data package): exact for the
/// GPT-4o family, a close estimate for other models. A message whose count is already known (the context reads it from
/// the store) is remembered with it, so counting a prompt again (metering does, before every call) costs no tokenising.
/// </summary>
public sealed class TokenCounter
{
    private readonly ConditionalWeakTable<ChatMessage, StrongBox<int>> _known = new();

    // Each chat message costs a few tokens of framing beyond its text (role and separators).
    public const int PerMessageOverhead = 4;

    private static readonly Lazy<Tokenizer> Tokenizer = new(() => TiktokenTokenizer.CreateForModel("gpt-4o"));

    public int Count(string? text) => string.IsNullOrEmpty(text) ? 0 : Tokenizer.Value.CountTokens(text);

    /// <summary>Records what <paramref name="message"/> counts (its overhead included), for as long as it lives; it must not change after.</summary>
    public ChatMessage Remember(ChatMessage message, int count)
    {
        _known.AddOrUpdate(message, new StrongBox<int>(count));
        return message;
    }

    public int Count(ChatMessage message) => _known.TryGetValue(message, out var known) ? known.Value : CountContents(message);

    private int CountContents(ChatMessage message) =>
        PerMessageOverhead + message.Contents.Sum(content => content switch
        {
            TextContent text => Count(text.Text),
            FunctionCallContent call => Count(call.Name) + Count(System.Text.Json.JsonSerializer.Serialize(call.Arguments)),
            FunctionResultContent result => Count(result.Result?.ToString()),
            _ => 0,
        });

    public int Count(IEnumerable<ChatMessage> messages) => messages.Sum(Count);

    /// <summary>The text cut to at most <paramref name="maxTokens"/> tokens.</summary>
    public string Truncate(string text, int maxTokens)
    {
        if (maxTokens <= 0)
        {
            return "";
        }

        var index = Tokenizer.Value.GetIndexByTokenCount(text, maxTokens, out _, out _);
        return index >= text.Length ? text : text[..index] + "…";
    }
}
