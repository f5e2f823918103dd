using System.Text.RegularExpressions;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Agents;

/// <summary>
/// Names a conversation after its first exchange: one short LLM call through AiChat's metered pipeline (reserved,
/// settled and charged to the user, on the turn it follows), whatever runtime answered the turn. The offline model
/// answers it with its deterministic title (the marker in the system prompt asks it to).
/// </summary>
public sealed partial class TitleWriter(IChatClient chat, ModelCatalog models)
{
    /// <summary>The longest title written; a longer answer is cut at a word.</summary>
    public const int MaxChars = 60;

    // A title is a few words: this bounds what is reserved and what a talkative model may cost.
    private const int MaxOutputTokens = 24;

    // Enough of the exchange to say what it is about, however long the message and its answer were.
    private const int MaxQuotedChars = 2_000;

    private const string Instructions =
        $"{OfflineChatClient.TitleMarker} You name conversations. Reply with a title of at most six words for the conversation that "
        + "begins with the user's message and the answer below: the title only, on one line, in the user's language, with no quotes "
        + "and no final punctuation.";

    /// <summary>
    /// A title for the exchange, on the conversation's model (<paramref name="model"/>; the catalogue's default when it
    /// names none or one no longer listed); null when the model's answer has nothing a title can be made of. Throws what
    /// the call throws (a budget refusal, an LLM error).
    /// </summary>
    public async Task<string?> SuggestAsync(Guid userId, Guid turnId, string? model, string userText, string assistantText, CancellationToken cancellationToken)
    {
        var entry = models.Resolve(model);
        List<ChatMessage> prompt =
        [
            new(ChatRole.System, Instructions),
            new(ChatRole.User, Quote(userText)),
            new(ChatRole.Assistant, Quote(assistantText)),
            new(ChatRole.User, "Title this conversation."),
        ];
        var options = new LlmCaller(userId, turnId).On(new ChatOptions { ModelId = entry.Id, MaxOutputTokens = Math.Min(MaxOutputTokens, entry.MaxOutputTokens) });
        var response = await chat.GetResponseAsync(prompt, options, cancellationToken);
        return Clean(response.Text);
    }

    /// <summary>
    /// A model's answer as a title: its first non-empty line, without a "Title:" label, surrounding quotes or markup, or
    /// final punctuation, on one line of at most <see cref="MaxChars"/> characters (cut at a word); null when nothing is left.
    /// </summary>
    public static string? Clean(string? answer)
    {
        var line = (answer ?? "").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
        line = Label().Replace(line, "");
        string previous;
        do
        {
            previous = line;
            line = line.Trim().Trim('"', '\'', '`', '*', '#', '“', '”', '‘', '’', '«', '»').TrimEnd('.', '!', ',', ';', ':').Trim();
        }
        while (line != previous);

        line = new string(Spaces().Replace(line, " ").Where(c => !char.IsControl(c)).ToArray());
        if (line.Length > MaxChars)
        {
            var cut = line.LastIndexOf(' ', MaxChars);
            line = (cut > MaxChars / 2 ? line[..cut] : line[..MaxChars]).TrimEnd();
        }

        return line.Length == 0 ? null : line;
    }

    private static string Quote(string text) => text.Length <= MaxQuotedChars ? text : text[..MaxQuotedChars] + "…";

    [GeneratedRegex(@"^\W*title\s*:\s*", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Label();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
