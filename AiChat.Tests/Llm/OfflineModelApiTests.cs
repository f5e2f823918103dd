using System.Net;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Llm;

/// <summary>
/// The offline model through the public HTTP API, on SQLite and Postgres: Russian through the real tool path and the
/// memory shared by conversations, and its paced reply as a client sees it streamed and cancelled.
/// </summary>
[Trait("Category", "Llm")]
public sealed class OfflineModelApiTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ANameToldInRussianInOneConversationIsTheAnswerInAnother(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        var first = await Conversations.CreateIdAsync(client, pair.AccessToken);
        var second = await Conversations.CreateIdAsync(client, pair.AccessToken);
        var unknown = await Conversations.AnswerAsync(client, pair.AccessToken, second, "Как меня зовут?");
        Assert.Equal("[офлайн-модель] Я пока не знаю, как вас зовут. Скажите «меня зовут …», и я запомню.", Content(unknown));

        var told = await Conversations.AnswerAsync(client, pair.AccessToken, first, "меня зовут Анна");
        var known = await Conversations.AnswerAsync(client, pair.AccessToken, second, "как меня зовут?");

        Assert.Equal("[офлайн-модель] Понятно. Записано в память: «Имя: Анна».", Content(told));
        Assert.Equal("[офлайн-модель] Вас зовут Анна. Это есть в моей памяти.", Content(known));
        var memory = await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory");
        Assert.Equal("Имя: Анна", memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString());
        var change = Assert.Single((await ConversationTests.GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory/changes")).GetProperty("changes").EnumerateArray());
        Assert.Equal(("tool", first), (change.GetProperty("source").GetProperty("kind").GetString(), change.GetProperty("source").GetProperty("conversation_id").GetGuid()));
        Assert.Equal("Меня зовут Анна", await ConversationRequests.TitleAsync(client, pair.AccessToken, first));
        Assert.Equal("Как меня зовут", await ConversationRequests.TitleAsync(client, pair.AccessToken, second));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task APacedReplyArrivesAWordPerEventAndACancelStopsItMidReply(StoreProvider provider)
    {
        // A second a word: the whole reply would take half a minute, so a reply cut short shows the cancel took hold.
        await using var api = await OnAsync(new ApiFactory().WithSetting("Llm:Offline:WordDelay", "00:00:01"), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "paced");
        var (response, reader) = await SseReader.OpenAsync(client, Conversations.Send(pair.AccessToken, id, "привет"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var started = (await reader.NextAsync(Ct))!;
        Assert.Equal("turn.started", started.Event);

        var words = new[] { (await reader.NextAsync(Ct))!, (await reader.NextAsync(Ct))! };
        Assert.Equal([("message.delta", "[офлайн-модель] "), ("message.delta", "Я ")], words.Select(e => (e.Event, e.Data.GetProperty("text").GetString())));
        var cancel = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/chat/turns/{started.Data.GetProperty("turn_id").GetGuid()}/cancel", pair.AccessToken);
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var rest = await reader.ReadAllAsync();

        Assert.Equal(("turn.failed", "cancelled"), (rest[^1].Event, rest[^1].Data.GetProperty("code").GetString()));
        var streamed = string.Concat(words.Concat(rest).Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString()));
        var full = $"{OfflineChatClient.RussianLabel} {OfflinePhrases.Russian.Introduction("привет")}";
        Assert.True(streamed.Length < full.Length && full.StartsWith(streamed, StringComparison.Ordinal), $"streamed \"{streamed}\"");
        var answer = (await Conversations.MessagesAsync(client, pair.AccessToken, id))[0];
        Assert.Equal(("assistant", "cancelled", streamed), (answer.GetProperty("role").GetString(), answer.GetProperty("status").GetString(), answer.GetProperty("content").GetString()));
    }

    private static string? Content(JsonElement answer) => answer.GetProperty("assistant_message").GetProperty("content").GetString();

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
