using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using AiChat.Api.Data;
using AiChat.Tests.Agents;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Chat;

/// <summary><c>GET /api/v1/search</c> over real HTTP on SQLite and Postgres, and the conversation_search tool across conversations.</summary>
[Trait("Category", "Chat")]
public sealed partial class SearchTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task HitsComeFromEveryConversationWithItsIdTitleAndAMarkedSnippet(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var trip = await CreateConversationAsync(client, ana.AccessToken, "Trip planning");
        var work = await CreateConversationAsync(client, ana.AccessToken, "Work notes");
        var planned = await SendAsync(client, ana.AccessToken, trip, "We are planning a trip to Paris in May");
        var office = await SendAsync(client, ana.AccessToken, work, "The Paris office opens on Monday");
        await SendAsync(client, ana.AccessToken, work, "Nothing to see here");

        var hits = await HitsAsync(client, ana.AccessToken, "paris");

        // One word once in each: the newer message first.
        Assert.Equal(2, hits.Count);
        AssertHit(hits[0], work, "Work notes", office, "The <mark>Paris</mark> office opens on Monday");
        AssertHit(hits[1], trip, "Trip planning", planned, "We are planning a trip to <mark>Paris</mark> in May");

        // More of the words first.
        var both = await HitsAsync(client, ana.AccessToken, "Paris trip");
        Assert.Equal([planned.Id, office.Id], both.Select(h => h.GetProperty("message_id").GetGuid()));
        Assert.Equal("We are planning a <mark>trip</mark> to <mark>Paris</mark> in May", both[0].GetProperty("snippet").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnotherUsersMessagesAreNeverFound(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var bob = await client.RegisterAsync(name: "Bob");
        var anas = await SendAsync(client, ana.AccessToken, await CreateConversationAsync(client, ana.AccessToken, "Ana's"), "my secret recipe for lemon cake");
        var bobs = await SendAsync(client, bob.AccessToken, await CreateConversationAsync(client, bob.AccessToken, "Bob's"), "a lemon tree in the garden");

        Assert.Equal([anas.Id], (await HitsAsync(client, ana.AccessToken, "lemon")).Select(h => h.GetProperty("message_id").GetGuid()));
        Assert.Equal([bobs.Id], (await HitsAsync(client, bob.AccessToken, "lemon recipe cake secret")).Select(h => h.GetProperty("message_id").GetGuid()));
        Assert.Empty(await HitsAsync(client, bob.AccessToken, "recipe"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AMessageWithMarkupComesBackEscapedWithOnlyTheMarksAsTags(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var conversation = await CreateConversationAsync(client, ana.AccessToken, "Markup");
        await SendAsync(client, ana.AccessToken, conversation, "<script>alert(\"hacked\")</script> & <b>bold</b> 'hacked'");

        var snippet = Assert.Single(await HitsAsync(client, ana.AccessToken, "hacked")).GetProperty("snippet").GetString()!;

        Assert.Equal(
            "&lt;script&gt;alert(&quot;<mark>hacked</mark>&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; &#x27;<mark>hacked</mark>&#x27;",
            snippet);
        Assert.Equal(["<mark>", "</mark>", "<mark>", "</mark>"], TagPattern().Matches(snippet).Select(m => m.Value));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OperatorsAndQuotesAreTextToSearchForNeverSyntax(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var found = await SendAsync(client, ana.AccessToken, await CreateConversationAsync(client, ana.AccessToken, "Notes"), "Paris or Rome, not both");

        string[] syntaxOnly = ["\"", "AND OR NOT", "*", "NEAR(", "-", ":", "'", "\\", "^", "(", ")", "()", "\"\"", "' OR 1=1 --", "&|!<->", "½"];
        foreach (var query in syntaxOnly)
        {
            var response = await SearchAsync(client, ana.AccessToken, $"?query={Uri.EscapeDataString(query)}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        string[] withAWord = ["\"paris", "paris\"", "paris*", "-paris", "paris:", "title:paris", "NEAR(paris", "NEAR(paris rome)", "paris AND", "NOT paris",
            "'paris'", "\\paris", "^paris", "(paris", "paris) OR (", "paris OR", "\"paris rome\"", "paris & !rome", "paris <-> rome", "paris'; DROP TABLE messages; --"];
        foreach (var query in withAWord)
        {
            var hits = await HitsAsync(client, ana.AccessToken, query);
            Assert.True(hits.Any(h => h.GetProperty("message_id").GetGuid() == found.Id), $"{query} finds the message");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task PagesWithBeforeReturnTheRestWithoutOverlapWhileOthersWrite(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var bob = await client.RegisterAsync(name: "Bob");
        var first = await CreateConversationAsync(client, ana.AccessToken, "First");
        var second = await CreateConversationAsync(client, ana.AccessToken, "Second");
        var bobs = await CreateConversationAsync(client, bob.AccessToken, "Bob's");
        string[] texts =
        [
            "apple", "apple banana", "banana", "apple apple", "banana apple apple", "apple", "cherry", "banana banana banana", "apple", "apple banana banana",
        ];
        var sent = new List<Guid>();
        for (var i = 0; i < texts.Length; i++)
        {
            sent.Add((await SendAsync(client, ana.AccessToken, i % 2 == 0 ? first : second, texts[i])).Id);
        }

        var all = (await HitsAsync(client, ana.AccessToken, "apple banana", limit: 50)).Select(h => h.GetProperty("message_id").GetGuid()).ToList();
        // Both words (the more often the better), then one of them (likewise), newest first among equals.
        int[] expected = [9, 4, 1, 7, 3, 8, 5, 2, 0];
        Assert.Equal(expected.Select(i => sent[i]), all);

        var collected = new List<Guid>();
        var sizes = new List<int>();
        string? cursor = null;
        do
        {
            var page = await PageAsync(client, ana.AccessToken, $"?query=apple%20banana&limit=2{(cursor is null ? "" : $"&before={cursor}")}");
            var ids = page.GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("message_id").GetGuid()).ToList();
            collected.AddRange(ids);
            sizes.Add(ids.Count);
            cursor = page.GetProperty("next_cursor").GetString();

            // Meanwhile others write to the same index (which moves any index-wide score such as bm25), and so does Ana.
            await SendAsync(client, bob.AccessToken, bobs, $"apple apple banana {collected.Count}");
            await SendAsync(client, ana.AccessToken, second, "cherry again");
        }
        while (cursor is not null);

        Assert.Equal([2, 2, 2, 2, 1], sizes);
        Assert.Equal(all, collected);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ABadQueryLimitOrCursorIsAProblemDocument(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var conversation = await CreateConversationAsync(client, ana.AccessToken, "Notes");
        for (var i = 0; i < 3; i++)
        {
            await SendAsync(client, ana.AccessToken, conversation, $"kiwi number {i}");
        }

        var cursor = (await PageAsync(client, ana.AccessToken, "?query=kiwi&limit=1")).GetProperty("next_cursor").GetString()!;
        var historyCursor = (await (await client.GetWithTokenAsync($"/api/v1/conversations/{conversation}/messages?limit=1", ana.AccessToken))
            .Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("next_cursor").GetString()!;

        string[] bad =
        [
            "", "?query=", "?query=%20%20", $"?query={new string('k', 501)}", "?query=kiwi&limit=0", "?query=kiwi&limit=51", "?query=kiwi&limit=-1",
            "?query=kiwi&before=nonsense", "?query=kiwi&before=", $"?query=kiwi&before={historyCursor}", $"?query=melon&before={cursor}",
            $"?query=kiwi&before={cursor}x",
        ];
        foreach (var query in bad)
        {
            await ApiPipelineTests.AssertProblemAsync(await SearchAsync(client, ana.AccessToken, query), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }

        await ApiPipelineTests.AssertProblemAsync(await SearchAsync(client, ana.AccessToken, "?query=kiwi&limit=many"), HttpStatusCode.BadRequest, "bad_request");
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/search?query=kiwi", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SearchAsync(client, ana.AccessToken, $"?query={new string('k', 500)}")).StatusCode);
        Assert.Equal(2, (await PageAsync(client, ana.AccessToken, $"?query=KIWI,&before={cursor}")).GetProperty("hits").GetArrayLength());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AReplacedAnswerAndTheMessagesOfADeletedConversationAreNotHits(StoreProvider provider)
    {
        var model = new ScriptedChatClient((_, messages, _) => ScriptedStep.Say(
            messages.Last(m => m.Role == ChatRole.User).Text.Contains("stripes", StringComparison.Ordinal) ? "Zebras have stripes." : "Noted."));
        await using var api = await ApiOnAsync(provider, model);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var kept = await CreateConversationAsync(client, ana.AccessToken, "Animals");
        var doomed = await CreateConversationAsync(client, ana.AccessToken, "Doomed");
        var first = await SendAsync(client, ana.AccessToken, kept, "Which animal has stripes?");
        var again = await SendAsync(client, ana.AccessToken, kept, "Tell me again about stripes");
        await SendAsync(client, ana.AccessToken, doomed, "zebra crossings are striped");

        Assert.Equal(3, (await HitsAsync(client, ana.AccessToken, "zebra")).Count);

        // What a regenerate leaves behind: the first answer replaced by a later one, kept only as an alternative.
        await using (var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct))
        {
            await connection.ExecuteAsync("UPDATE messages SET replaced_by_id = @by WHERE id = @id", new { id = first.AnswerId, by = again.AnswerId });
        }

        var afterRegenerate = await HitsAsync(client, ana.AccessToken, "zebra");
        Assert.Equal(2, afterRegenerate.Count);
        Assert.DoesNotContain(afterRegenerate, h => h.GetProperty("message_id").GetGuid() == first.AnswerId);
        var answer = Assert.Single(afterRegenerate, h => h.GetProperty("message_id").GetGuid() == again.AnswerId);
        Assert.Equal("assistant", answer.GetProperty("role").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/conversations/{doomed}", ana.AccessToken)).StatusCode);
        Assert.Equal([again.AnswerId], (await HitsAsync(client, ana.AccessToken, "zebra")).Select(h => h.GetProperty("message_id").GetGuid()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheConversationSearchToolAnswersInOneConversationWithAHitFromAnother(StoreProvider provider)
    {
        await using var api = await ApiOnAsync(provider, offline: true);
        using var client = api.CreateClient();
        var ana = await client.RegisterAsync();
        var holiday = await CreateConversationAsync(client, ana.AccessToken, "Holiday plans");
        var other = await CreateConversationAsync(client, ana.AccessToken, "Something else");
        await SendAsync(client, ana.AccessToken, holiday, "I want to visit Lisbon in spring");

        var response = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/conversations/{other}/messages", ana.AccessToken, new { content = "What did I say about Lisbon?" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("assistant_message").GetProperty("content").GetString()!;
        Assert.StartsWith("[offline model] Here is what I remember:", answer, StringComparison.Ordinal);
        Assert.Contains($"Holiday plans\\u0022 {holiday}] user", answer, StringComparison.Ordinal);
        Assert.Contains("I want to visit Lisbon in spring", answer, StringComparison.Ordinal);
    }

    private static void AssertHit(JsonElement hit, Guid conversation, string title, Sent message, string snippet)
    {
        Assert.Equal(conversation, hit.GetProperty("conversation_id").GetGuid());
        Assert.Equal(title, hit.GetProperty("conversation_title").GetString());
        Assert.Equal(message.Id, hit.GetProperty("message_id").GetGuid());
        Assert.Equal("user", hit.GetProperty("role").GetString());
        Assert.Equal(snippet, hit.GetProperty("snippet").GetString());
        Assert.Equal(message.CreatedAt, hit.GetProperty("created_at").GetDateTimeOffset());
    }

    /// <summary>The API on a fresh store; its model answers "Noted." (no word a search looks for), or is the offline model with <paramref name="offline"/>.</summary>
    private async Task<ApiFactory> ApiOnAsync(StoreProvider provider, IChatClient? model = null, bool offline = false)
    {
        var api = new ApiFactory();
        if (!offline)
        {
            model ??= new ScriptedChatClient((_, _, _) => ScriptedStep.Say("Noted."));
            api.WithServices(s => s.UseModel(model));
        }

        return provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
    }

    private static async Task<Guid> CreateConversationAsync(HttpClient client, string token, string title)
    {
        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/conversations", token, new { title });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
    }

    private static async Task<Sent> SendAsync(HttpClient client, string token, Guid conversation, string content)
    {
        var response = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/conversations/{conversation}/messages", token, new { content });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var user = result.GetProperty("user_message");
        return new Sent(user.GetProperty("id").GetGuid(), user.GetProperty("created_at").GetDateTimeOffset(), result.GetProperty("assistant_message").GetProperty("id").GetGuid());
    }

    private static Task<HttpResponseMessage> SearchAsync(HttpClient client, string token, string query) => client.GetWithTokenAsync($"/api/v1/search{query}", token);

    private static async Task<JsonElement> PageAsync(HttpClient client, string token, string query)
    {
        var response = await SearchAsync(client, token, query);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static async Task<List<JsonElement>> HitsAsync(HttpClient client, string token, string query, int limit = 20) =>
        (await PageAsync(client, token, $"?query={Uri.EscapeDataString(query)}&limit={limit}")).GetProperty("hits").EnumerateArray().ToList();

    [GeneratedRegex("<[^>]*>")]
    private static partial Regex TagPattern();

    private sealed record Sent(Guid Id, DateTimeOffset CreatedAt, Guid AnswerId);
}
