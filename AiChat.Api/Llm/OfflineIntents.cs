using System.Text;
using System.Text.RegularExpressions;

namespace AiChat.Api.Llm;

/// <summary>What a user's message asks of the offline model.</summary>
public enum OfflineIntentKind
{
    /// <summary>"my name is Ana", "меня зовут Анна": save the name.</summary>
    SetName,

    /// <summary>"I like jazz", "я люблю джаз": save a preference.</summary>
    Like,

    /// <summary>"what do you know about …", "что ты знаешь о …": search archival memory.</summary>
    Recall,

    /// <summary>"what did I say about …", "что я говорил(а) о …": search the conversations.</summary>
    Search,

    /// <summary>"remember that …", "запомни, что …": save a passage to archival memory.</summary>
    Remember,

    /// <summary>"what is my name?", "как меня зовут?": answer from the <c>human</c> block.</summary>
    AskName,

    /// <summary>"what do I like?", "что я люблю?": answer from the <c>human</c> block.</summary>
    AskLikes,
}

/// <summary>One reading of a message: what it asks, in which language, and what it is about (a name, a preference, a query; empty for a question).</summary>
public sealed record OfflineIntent(OfflineIntentKind Kind, OfflineLanguage Language, string Value);

/// <summary>
/// The phrases the offline model understands, in English and Russian, found case-insensitively anywhere in a message,
/// with or without final punctuation. A message may hold several ("remember that my name is Ana"), so the readings come
/// in priority order: a name, a preference, a recall, a search, a "remember", then the questions.
/// </summary>
public static partial class OfflineIntents
{
    private static readonly (OfflineIntentKind Kind, OfflineLanguage Language, Regex Pattern)[] Patterns =
    [
        (OfflineIntentKind.SetName, OfflineLanguage.English, EnglishName()),
        (OfflineIntentKind.SetName, OfflineLanguage.Russian, RussianName()),
        (OfflineIntentKind.Like, OfflineLanguage.English, EnglishLike()),
        (OfflineIntentKind.Like, OfflineLanguage.Russian, RussianLike()),
        (OfflineIntentKind.Recall, OfflineLanguage.English, EnglishRecall()),
        (OfflineIntentKind.Recall, OfflineLanguage.Russian, RussianRecall()),
        (OfflineIntentKind.Search, OfflineLanguage.English, EnglishSearch()),
        (OfflineIntentKind.Search, OfflineLanguage.Russian, RussianSearch()),
        (OfflineIntentKind.Remember, OfflineLanguage.English, EnglishRemember()),
        (OfflineIntentKind.Remember, OfflineLanguage.Russian, RussianRemember()),
        (OfflineIntentKind.AskName, OfflineLanguage.English, EnglishAskName()),
        (OfflineIntentKind.AskName, OfflineLanguage.Russian, RussianAskName()),
        (OfflineIntentKind.AskLikes, OfflineLanguage.English, EnglishAskLikes()),
        (OfflineIntentKind.AskLikes, OfflineLanguage.Russian, RussianAskLikes()),
    ];

    /// <summary>Every reading of the message, in priority order.</summary>
    public static IEnumerable<OfflineIntent> Read(string message) =>
        from pattern in Patterns
        let match = pattern.Pattern.Match(message)
        where match.Success
        select new OfflineIntent(pattern.Kind, pattern.Language, pattern.Kind == OfflineIntentKind.SetName ? Name(match.Groups["name"].Value) : Clean(match.Groups["what"].Value));

    /// <summary>The language to answer a message in: that of the first phrase recognised in it, else the script most of its letters are in.</summary>
    public static OfflineLanguage LanguageOf(string message) => Read(message).FirstOrDefault()?.Language ?? ScriptOf(message);

    /// <summary>Russian when most of the letters are Cyrillic, else English.</summary>
    public static OfflineLanguage ScriptOf(string text)
    {
        var (cyrillic, other) = (0, 0);
        foreach (var letter in text.Where(char.IsLetter))
        {
            if (letter is >= '\u0400' and <= '\u04FF')
            {
                cyrillic++;
            }
            else
            {
                other++;
            }
        }

        return cyrillic > other ? OfflineLanguage.Russian : OfflineLanguage.English;
    }

    /// <summary>A value without surrounding space or final punctuation.</summary>
    public static string Clean(string value) => value.Trim().TrimEnd('.', '!', '?', ',', ';', '…').Trim();

    /// <summary>A name as a person writes it: typed all in lower or all in upper case, each part gets a capital ("анна" → "Анна").</summary>
    public static string Name(string value)
    {
        var name = Clean(value);
        if (name != name.ToLowerInvariant() && name != name.ToUpperInvariant())
        {
            return name;
        }

        var written = new StringBuilder(name.Length);
        for (var i = 0; i < name.Length; i++)
        {
            var startsPart = i == 0 || name[i - 1] is ' ' or '-' or '\'';
            written.Append(startsPart ? char.ToUpperInvariant(name[i]) : char.ToLowerInvariant(name[i]));
        }

        return written.ToString();
    }

    // A name is one word, then up to two more that start with a capital: "my name is Ana and I like jazz" is "Ana".
    [GeneratedRegex(@"\b(?i:my name is|call me)\s+(?<name>[\p{L}][\p{L}'\-]{0,29}(?:\s+\p{Lu}[\p{L}'\-]{0,29}){0,2})", RegexOptions.CultureInvariant)]
    private static partial Regex EnglishName();

    [GeneratedRegex(@"\b(?i:меня\s+зовут|мо[её]\s+имя)(?:\s*[—–:-])?\s+(?<name>[\p{L}][\p{L}'\-]{0,29}(?:\s+\p{Lu}[\p{L}'\-]{0,29}){0,2})", RegexOptions.CultureInvariant)]
    private static partial Regex RussianName();

    // Not after "do": "what do I like most?" asks, it does not tell.
    [GeneratedRegex(@"(?<!\bdo\s+)\bI\s+(?:really\s+)?(?:like|love|prefer|enjoy)\s+(?<what>[^.!?\n]{1,120})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishLike();

    // Not after "что": "что я люблю?" asks, it does not tell.
    [GeneratedRegex(@"(?<!\bчто\s+)\b(?:я\s+(?:очень\s+|правда\s+|просто\s+)?(?:люблю|обожаю|предпочитаю)|мне\s+(?:очень\s+|правда\s+)?нрав(?:ится|ятся))\s+(?<what>[^.!?\n]{1,120})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianLike();

    [GeneratedRegex(@"\bwhat do you (?:know|remember) about\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishRecall();

    [GeneratedRegex(@"\bчто\s+ты\s+(?:знаешь|помнишь)\s+(?:обо|об|о|про)\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianRecall();

    [GeneratedRegex(@"\b(?:what did (?:i|we) (?:say|tell you|talk) about|search (?:our|my|the) conversations? for)\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishSearch();

    [GeneratedRegex(@"\b(?:что\s+(?:я|мы)\s+(?:говорил|сказал|рассказывал|писал)[аи]?(?:\s+(?:тебе|вам))?\s+(?:обо|об|о|про)|найди\s+в\s+(?:наших\s+|моих\s+)?(?:разговорах|беседах|переписке))\s+(?<what>[^?\n]{1,200})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianSearch();

    [GeneratedRegex(@"\bremember\s+(?:that\s+)?(?<what>[^\n]{3,400})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishRemember();

    [GeneratedRegex(@"\bзапомни(?:те)?\b[\s,:—–-]*(?:что\s+)?(?<what>[^\n]{3,400})", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianRemember();

    [GeneratedRegex(@"\bwhat(?:'s| is)\s+my\s+name\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishAskName();

    [GeneratedRegex(@"\b(?:как\s+меня\s+зовут|как\s+мо[её]\s+имя|какое\s+у\s+меня\s+имя)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianAskName();

    [GeneratedRegex(@"\bwhat do i (?:like|love|enjoy)\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex EnglishAskLikes();

    [GeneratedRegex(@"\b(?:что\s+я\s+(?:люблю|обожаю)|что\s+мне\s+нрав(?:ится|ятся))\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RussianAskLikes();
}
