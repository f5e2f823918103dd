namespace AiChat.Api.Llm;

/// <summary>The languages the offline model understands and answers in.</summary>
public enum OfflineLanguage
{
    English,
    Russian,
}

/// <summary>
/// What the offline model says, and the field names it writes into the <c>human</c> block, in one language. Replies
/// carry no label: the model puts <see cref="Label"/> in front. The Russian avoids gendered past tenses, since the
/// model has no gender and the user's is unknown.
/// </summary>
public sealed class OfflinePhrases
{
    public static readonly OfflinePhrases English = new()
    {
        Label = OfflineChatClient.Label,
        NameField = "Name",
        LikesField = "Likes",
        YourName = name => $"Your name is {name}. I have it in my memory.",
        NameUnknown = "I don't know your name yet. Tell me (\"my name is …\") and I'll remember it.",
        YouLike = likes => $"From my memory, you like: {likes}.",
        LikesUnknown = "You haven't told me what you like yet.",
        Noted = line => $"Got it. I've noted \"{line}\" in my memory.",
        Saved = "Noted. I've saved that to my long-term memory.",
        Found = text => $"Here is what I remember: {text}",
        NothingFound = "I don't remember anything about that.",
        NotSaved = error => $"I couldn't save that: {error}",
        Done = "Done.",
        Introduction = said => $"I'm AiChat's offline model: I run without any LLM, so I can only remember things you tell me (\"my name is …\", \"I like …\", \"remember that …\") and answer from memory. You said: \"{said}\"",
        Summary = (count, lines) => $"summary of {count} earlier message(s): {lines}",
    };

    public static readonly OfflinePhrases Russian = new()
    {
        Label = OfflineChatClient.RussianLabel,
        NameField = "Имя",
        LikesField = "Любит",
        YourName = name => $"Вас зовут {name}. Это есть в моей памяти.",
        NameUnknown = "Я пока не знаю, как вас зовут. Скажите «меня зовут …», и я запомню.",
        YouLike = likes => $"Судя по моей памяти, вы любите: {likes}.",
        LikesUnknown = "Вы ещё не говорили мне, что любите.",
        Noted = line => $"Понятно. Записано в память: «{line}».",
        Saved = "Понятно. Это сохранено в долговременной памяти.",
        Found = text => $"Вот что я помню: {text}",
        NothingFound = "Об этом я ничего не помню.",
        NotSaved = error => $"Не получилось сохранить: {error}",
        Done = "Готово.",
        Introduction = said => $"Я офлайн-модель AiChat: я работаю без языковой модели, поэтому умею только запоминать то, что вы мне говорите («меня зовут …», «я люблю …», «запомни, что …»), и отвечать по памяти. Вы написали: «{said}»",
        Summary = (count, lines) => $"краткое содержание прежних сообщений ({count}): {lines}",
    };

    private OfflinePhrases()
    {
    }

    public required string Label { get; init; }

    /// <summary>The field of the <c>human</c> block's name line (<c>Name: Ana</c>, <c>Имя: Анна</c>).</summary>
    public required string NameField { get; init; }

    /// <summary>The field of a preference line (<c>Likes: jazz</c>, <c>Любит: джаз</c>).</summary>
    public required string LikesField { get; init; }

    public required Func<string, string> YourName { get; init; }

    public required string NameUnknown { get; init; }

    public required Func<string, string> YouLike { get; init; }

    public required string LikesUnknown { get; init; }

    /// <summary>After a core-memory write, quoting the line written.</summary>
    public required Func<string, string> Noted { get; init; }

    /// <summary>After an archival insert.</summary>
    public required string Saved { get; init; }

    /// <summary>After a search that found something, with the tool's result.</summary>
    public required Func<string, string> Found { get; init; }

    public required string NothingFound { get; init; }

    public required Func<string, string> NotSaved { get; init; }

    public required string Done { get; init; }

    /// <summary>The answer to anything else: the plain statement of what the offline model is, echoing the message.</summary>
    public required Func<string, string> Introduction { get; init; }

    public required Func<int, string, string> Summary { get; init; }

    public static OfflinePhrases For(OfflineLanguage language) => language == OfflineLanguage.Russian ? Russian : English;
}
