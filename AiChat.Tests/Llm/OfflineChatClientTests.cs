using System.Text.Encodings.Web;
using System.Text.Json;
using AiChat.Api.Agents;
using AiChat.Api.Llm;
using Microsoft.Extensions.AI;

namespace AiChat.Tests.Llm;

/// <summary>
/// The offline model on its own, prompted as the built-in runtime prompts it (the real system prompt with the memory
/// blocks, the real tool names): which phrases of English and Russian call which memory tool with which arguments, what
/// it answers and in which language, and that its reply streams a word per update.
/// </summary>
[Trait("Category", "Llm")]
public sealed class OfflineChatClientTests
{
    private static readonly OfflineChatClient Model = new(new TokenCounter());

    private static readonly AITool[] MemoryTools =
    [
        .. new[] { MemoryToolNames.Append, MemoryToolNames.Replace, MemoryToolNames.ArchivalInsert, MemoryToolNames.ArchivalSearch, MemoryToolNames.ConversationSearch }
            .Select(name => AIFunctionFactory.Create(() => "", name)),
    ];

    private static readonly JsonSerializerOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("my name is Ana", MemoryToolNames.Append, """{"label":"human","content":"Name: Ana"}""")]
    [InlineData("Меня зовут Анна", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""")]
    [InlineData("меня зовут Анна.", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""")]
    [InlineData("Привет! Меня зовут Анна", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""")]
    [InlineData("МЕНЯ ЗОВУТ АННА!", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""")]
    [InlineData("меня зовут анна", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""")]
    [InlineData("Меня зовут Анна Каренина, и я люблю чай", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна Каренина"}""")]
    [InlineData("моё имя — Пётр", MemoryToolNames.Append, """{"label":"human","content":"Имя: Пётр"}""")]
    [InlineData("I like jazz.", MemoryToolNames.Append, """{"label":"human","content":"Likes: jazz"}""")]
    [InlineData("я люблю джаз", MemoryToolNames.Append, """{"label":"human","content":"Любит: джаз"}""")]
    [InlineData("Я очень люблю зелёный чай!", MemoryToolNames.Append, """{"label":"human","content":"Любит: зелёный чай"}""")]
    [InlineData("Мне нравятся длинные прогулки", MemoryToolNames.Append, """{"label":"human","content":"Любит: длинные прогулки"}""")]
    [InlineData("remember that the keys are in the drawer", MemoryToolNames.ArchivalInsert, """{"content":"the keys are in the drawer"}""")]
    [InlineData("Запомни, что ключи лежат в ящике.", MemoryToolNames.ArchivalInsert, """{"content":"ключи лежат в ящике"}""")]
    [InlineData("запомни: у меня аллергия на орехи", MemoryToolNames.ArchivalInsert, """{"content":"у меня аллергия на орехи"}""")]
    [InlineData("what do you know about Lisbon?", MemoryToolNames.ArchivalSearch, """{"query":"Lisbon"}""")]
    [InlineData("Что ты знаешь о Лиссабоне?", MemoryToolNames.ArchivalSearch, """{"query":"Лиссабоне"}""")]
    [InlineData("что ты помнишь про мою собаку", MemoryToolNames.ArchivalSearch, """{"query":"мою собаку"}""")]
    [InlineData("what did I say about the trip?", MemoryToolNames.ConversationSearch, """{"query":"the trip"}""")]
    [InlineData("Что я говорила о поездке?", MemoryToolNames.ConversationSearch, """{"query":"поездке"}""")]
    [InlineData("что я говорил про отпуск", MemoryToolNames.ConversationSearch, """{"query":"отпуск"}""")]
    [InlineData("Что мы говорили об отпуске?", MemoryToolNames.ConversationSearch, """{"query":"отпуске"}""")]
    [InlineData("найди в наших разговорах рецепт борща", MemoryToolNames.ConversationSearch, """{"query":"рецепт борща"}""")]
    public async Task EachPhraseInEitherLanguageCallsItsMemoryToolWithExactlyTheseArguments(string said, string tool, string arguments)
    {
        var call = CallOf(await AskAsync(said));

        Assert.Equal((tool, arguments), (call.Name, JsonSerializer.Serialize(call.Arguments, Readable)));
    }

    [Theory]
    [InlineData("Name: Ana", "меня зовут Анна", """{"label":"human","old_content":"Name: Ana","new_content":"Имя: Анна"}""")]
    [InlineData("Имя: Анна", "my name is Ana", """{"label":"human","old_content":"Имя: Анна","new_content":"Name: Ana"}""")]
    [InlineData("Имя: Анна\nЛюбит: джаз", "Меня зовут Аня", """{"label":"human","old_content":"Имя: Анна","new_content":"Имя: Аня"}""")]
    public async Task ANameGivenAgainReplacesTheOneInMemoryWhicheverLanguageWroteIt(string human, string said, string arguments)
    {
        var call = CallOf(await AskAsync(said, human));

        Assert.Equal((MemoryToolNames.Replace, arguments), (call.Name, JsonSerializer.Serialize(call.Arguments, Readable)));
    }

    [Theory]
    [InlineData("what is my name?", "Name: Ana", "[offline model] Your name is Ana. I have it in my memory.")]
    [InlineData("как меня зовут?", "Имя: Анна", "[офлайн-модель] Вас зовут Анна. Это есть в моей памяти.")]
    [InlineData("Как меня зовут", "Name: Ana", "[офлайн-модель] Вас зовут Ana. Это есть в моей памяти.")]
    [InlineData("А ты помнишь, как моё имя?", "Имя: Анна", "[офлайн-модель] Вас зовут Анна. Это есть в моей памяти.")]
    [InlineData("What's my name", "Имя: Анна", "[offline model] Your name is Анна. I have it in my memory.")]
    [InlineData("КАК МЕНЯ ЗОВУТ?!", "", "[офлайн-модель] Я пока не знаю, как вас зовут. Скажите «меня зовут …», и я запомню.")]
    [InlineData("what is my name?", "", "[offline model] I don't know your name yet. Tell me (\"my name is …\") and I'll remember it.")]
    [InlineData("Что я люблю?", "Любит: джаз\nLikes: tea", "[офлайн-модель] Судя по моей памяти, вы любите: джаз; tea.")]
    [InlineData("что мне нравится", "", "[офлайн-модель] Вы ещё не говорили мне, что любите.")]
    [InlineData("what do I like?", "Любит: джаз", "[offline model] From my memory, you like: джаз.")]
    [InlineData("what do I like most?", "Likes: jazz", "[offline model] From my memory, you like: jazz.")]
    [InlineData("Что я люблю больше всего?", "Любит: джаз", "[офлайн-модель] Судя по моей памяти, вы любите: джаз.")]
    public async Task AQuestionIsAnsweredFromMemoryInTheLanguageItWasAskedIn(string said, string human, string answer)
    {
        Assert.Equal(answer, (await AskAsync(said, human)).Text);
    }

    [Theory]
    [InlineData("привет!", "[офлайн-модель] Я офлайн-модель AiChat: я работаю без языковой модели, поэтому умею только запоминать то, что вы мне говорите («меня зовут …», «я люблю …», «запомни, что …»), и отвечать по памяти. Вы написали: «привет!»")]
    [InlineData("hello there", "[offline model] I'm AiChat's offline model: I run without any LLM, so I can only remember things you tell me (\"my name is …\", \"I like …\", \"remember that …\") and answer from memory. You said: \"hello there\"")]
    public async Task AnythingElseGetsThePlainStatementThatThisIsTheOfflineModelInTheUsersLanguage(string said, string answer)
    {
        Assert.Equal(answer, (await AskAsync(said)).Text);
    }

    [Fact]
    public async Task WithoutTheMemoryToolsARussianNameIsNotSavedAndTheAnswerSaysWhatTheModelIs()
    {
        var response = await AskAsync("меня зовут Анна", tools: []);

        Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.StartsWith("[офлайн-модель] Я офлайн-модель AiChat:", response.Text);
    }

    [Theory]
    [InlineData("меня зовут Анна", MemoryToolNames.Append, """{"label":"human","content":"Имя: Анна"}""", "The 'human' block now reads: Имя: Анна", "[офлайн-модель] Понятно. Записано в память: «Имя: Анна».")]
    [InlineData("меня зовут Аня", MemoryToolNames.Replace, """{"label":"human","old_content":"Имя: Анна","new_content":"Имя: Аня"}""", "The 'human' block now reads: Имя: Аня", "[офлайн-модель] Понятно. Записано в память: «Имя: Аня».")]
    [InlineData("запомни, что ключи в ящике", MemoryToolNames.ArchivalInsert, """{"content":"ключи в ящике"}""", "Saved passage 1.", "[офлайн-модель] Понятно. Это сохранено в долговременной памяти.")]
    [InlineData("что ты знаешь о ключах?", MemoryToolNames.ArchivalSearch, """{"query":"ключах"}""", "No passage matches.", "[офлайн-модель] Об этом я ничего не помню.")]
    [InlineData("что я говорил о ключах?", MemoryToolNames.ConversationSearch, """{"query":"ключах"}""", "[\"ключи в ящике\"]", "[офлайн-модель] Вот что я помню: [\"ключи в ящике\"]")]
    [InlineData("я люблю джаз", MemoryToolNames.Append, """{"label":"human","content":"Любит: джаз"}""", "Error: there is no 'human' block.", "[офлайн-модель] Не получилось сохранить: Error: there is no 'human' block.")]
    [InlineData("my name is Ana", MemoryToolNames.Append, """{"label":"human","content":"Name: Ana"}""", "The 'human' block now reads: Name: Ana", "[offline model] Got it. I've noted \"Name: Ana\" in my memory.")]
    public async Task AfterAToolRanTheReplyIsInTheLanguageOfTheMessageThatAskedForIt(string said, string tool, string arguments, string result, string reply)
    {
        var call = new FunctionCallContent("call_2", tool, JsonSerializer.Deserialize<Dictionary<string, object?>>(arguments));
        List<ChatMessage> conversation =
        [
            new(ChatRole.System, Prompt("")),
            new(ChatRole.User, said),
            new(ChatRole.Assistant, [call]),
            new(ChatRole.Tool, [new FunctionResultContent(call.CallId, result)]),
        ];

        var response = await Model.GetResponseAsync(conversation, new ChatOptions { Tools = MemoryTools }, Ct);

        Assert.Equal(reply, response.Text);
    }

    [Theory]
    [InlineData("меня зовут Анна, а тебя?", "Меня зовут Анна а тебя")]
    [InlineData("  «запомни», что я живу в Москве и работаю дома", "Запомни что я живу в Москве")]
    [InlineData("plan a trip to Lisbon in May, please!", "Plan a trip to Lisbon in")]
    public async Task ATitleIsTheMessagesFirstWordsInItsOwnLanguage(string said, string title)
    {
        List<ChatMessage> prompt = [new(ChatRole.System, $"{OfflineChatClient.TitleMarker} Name the conversation."), new(ChatRole.User, said), new(ChatRole.Assistant, "…")];

        Assert.Equal(title, (await Model.GetResponseAsync(prompt, new ChatOptions(), Ct)).Text);
    }

    [Fact]
    public async Task ASummaryOfARussianConversationIsInRussian()
    {
        List<ChatMessage> prompt =
        [
            new(ChatRole.System, $"{OfflineChatClient.SummarizeMarker} Summarise."),
            new(ChatRole.User, "меня зовут Анна"),
            new(ChatRole.Assistant, "[офлайн-модель] Понятно. Записано в память: «Имя: Анна»."),
        ];

        var summary = (await Model.GetResponseAsync(prompt, new ChatOptions(), Ct)).Text;

        Assert.Equal("[офлайн-модель] краткое содержание прежних сообщений (2): user: меня зовут Анна | assistant: [офлайн-модель] Понятно. Записано в память: «Имя: Анна».", summary);
    }

    [Fact]
    public async Task AReplyStreamsOneWordPerUpdateAndTheWordsAddUpToIt()
    {
        var texts = new List<string>();
        ChatFinishReason? finish = null;
        await foreach (var update in Model.GetStreamingResponseAsync(Conversation("как меня зовут?", "Имя: Анна"), new ChatOptions { Tools = MemoryTools }, Ct))
        {
            texts.AddRange(update.Contents.OfType<TextContent>().Select(text => text.Text).Where(text => text.Length > 0));
            finish ??= update.FinishReason;
        }

        Assert.Equal(["[офлайн-модель] ", "Вас ", "зовут ", "Анна. ", "Это ", "есть ", "в ", "моей ", "памяти."], texts);
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    private static async Task<ChatResponse> AskAsync(string said, string human = "", AITool[]? tools = null) =>
        await Model.GetResponseAsync(Conversation(said, human), new ChatOptions { Tools = tools ?? MemoryTools }, Ct);

    private static List<ChatMessage> Conversation(string said, string human) => [new(ChatRole.System, Prompt(human)), new(ChatRole.User, said)];

    // The built-in runtime's own system prompt, so the model reads the blocks where a turn puts them.
    private static string Prompt(string human) => ContextAssembler.SystemPrompt(
        [new MemoryBlock("persona", "I am a helpful assistant.", 2000, null, DateTimeOffset.UnixEpoch), new MemoryBlock("human", human, 2000, null, DateTimeOffset.UnixEpoch)],
        summary: null);

    private static FunctionCallContent CallOf(ChatResponse response) =>
        Assert.Single(response.Messages.SelectMany(message => message.Contents).OfType<FunctionCallContent>());
}
