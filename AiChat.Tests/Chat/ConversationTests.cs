using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Chat;

/// <summary>Conversations over real HTTP on SQLite and Postgres: create, list, get, change, archive and delete them.</summary>
[Trait("Category", "Chat")]
public sealed class ConversationTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ANewAccountHasExactlyOneConversationTheDefault(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var page = await Conversations.ListAsync(client, pair.AccessToken);

        var only = Assert.Single(page.GetProperty("conversations").EnumerateArray());
        Assert.True(only.GetProperty("is_default").GetBoolean());
        Assert.Equal(JsonValueKind.Null, only.GetProperty("title").ValueKind);
        Assert.Equal("aichat-offline", only.GetProperty("model").GetString());
        Assert.False(only.GetProperty("archived").GetBoolean());
        Assert.Equal(0, only.GetProperty("message_count").GetInt32());
        Assert.Equal(JsonValueKind.Null, only.GetProperty("last_message_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, page.GetProperty("next_cursor").ValueKind);
        Assert.Equal(only.GetRawText(), (await Conversations.GetAsync(client, pair.AccessToken, only.GetProperty("id").GetGuid())).GetRawText());
        Assert.Empty((await Conversations.ListAsync(client, pair.AccessToken, "?archived=true")).GetProperty("conversations").EnumerateArray());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ACreatedConversationIsAnsweredWithExactlyItsFieldsAndReadsBackTheSame(StoreProvider provider)
    {
        await using var api = await OnAsync(TwoModels(new ApiFactory()), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var before = DateTimeOffset.UtcNow;

        var titled = await Conversations.CreateAsync(client, pair.AccessToken, "  Trip plans ", "premium-model");
        var untitled = await Conversations.CreateAsync(client, pair.AccessToken);
        var noBody = await client.SendWithTokenAsync(HttpMethod.Post, Conversations.Path, pair.AccessToken);

        Assert.Equal(["id", "title", "model", "archived", "is_default", "created_at", "last_message_at", "message_count"], titled.EnumerateObject().Select(p => p.Name));
        Assert.Equal("Trip plans", titled.GetProperty("title").GetString());
        Assert.Equal("premium-model", titled.GetProperty("model").GetString());
        Assert.False(titled.GetProperty("archived").GetBoolean());
        Assert.False(titled.GetProperty("is_default").GetBoolean());
        Assert.InRange(titled.GetProperty("created_at").GetDateTimeOffset(), before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(JsonValueKind.Null, titled.GetProperty("last_message_at").ValueKind);
        Assert.Equal(0, titled.GetProperty("message_count").GetInt32());
        Assert.Equal(JsonValueKind.Null, untitled.GetProperty("title").ValueKind);
        Assert.Equal("house-model", untitled.GetProperty("model").GetString());
        Assert.Equal(HttpStatusCode.Created, noBody.StatusCode);

        // What the create answered is exactly what is stored: a GET and the list read back the same document.
        Assert.Equal(titled.GetRawText(), (await Conversations.GetAsync(client, pair.AccessToken, titled.GetProperty("id").GetGuid())).GetRawText());
        var listed = (await Conversations.ListAsync(client, pair.AccessToken)).GetProperty("conversations").EnumerateArray().ToList();
        Assert.Equal(4, listed.Count);
        Assert.Equal(untitled.GetRawText(), listed[1].GetRawText());
        Assert.Equal(titled.GetRawText(), listed[2].GetRawText());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ABadTitleOrAnUnknownModelCreatesNothing(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        foreach (var title in new[] { "", "   ", new string('t', 201), "two\nlines" })
        {
            await ApiPipelineTests.AssertProblemAsync(await Conversations.PostAsync(client, pair.AccessToken, new { title }), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }

        var unknown = await ApiPipelineTests.AssertProblemAsync(
            await Conversations.PostAsync(client, pair.AccessToken, new { title = "fine", model = "gpt-99" }), HttpStatusCode.UnprocessableEntity, "unknown_model");

        Assert.Equal(["aichat-offline"], JsonDocument.Parse(unknown).RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.Single(await Conversations.ListIdsAsync(client, pair.AccessToken));
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM conversations"));
        Assert.Equal(HttpStatusCode.Created, (await Conversations.PostAsync(client, pair.AccessToken, new { title = new string('t', 200) })).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheListIsByLastActivityNewestFirstAndPagesWithoutDuplicatesOrGaps(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var defaultId = Assert.Single(await Conversations.ListIdsAsync(client, pair.AccessToken));
        var created = new List<Guid>();
        for (var i = 1; i <= 5; i++)
        {
            created.Add(await Conversations.CreateIdAsync(client, pair.AccessToken, $"conversation {i}"));
        }

        Assert.Equal([created[4], created[3], created[2], created[1], created[0], defaultId], await Conversations.ListIdsAsync(client, pair.AccessToken));

        await Conversations.AnswerAsync(client, pair.AccessToken, created[0], "hello");

        List<Guid> expected = [created[0], created[4], created[3], created[2], created[1], defaultId];
        Assert.Equal(expected, await Conversations.ListIdsAsync(client, pair.AccessToken));
        var moved = await Conversations.GetAsync(client, pair.AccessToken, created[0]);
        Assert.Equal(2, moved.GetProperty("message_count").GetInt32());
        Assert.Equal((await Conversations.MessagesAsync(client, pair.AccessToken, created[0]))[0].GetProperty("created_at").GetDateTimeOffset(),
            moved.GetProperty("last_message_at").GetDateTimeOffset());

        var paged = new List<Guid>();
        var sizes = new List<int>();
        string? cursor = null;
        do
        {
            var page = await Conversations.ListAsync(client, pair.AccessToken, $"?limit=2{(cursor is null ? "" : $"&before={cursor}")}");
            var ids = page.GetProperty("conversations").EnumerateArray().Select(c => c.GetProperty("id").GetGuid()).ToList();
            sizes.Add(ids.Count);
            paged.AddRange(ids);
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal([2, 2, 2], sizes);
        Assert.Equal(expected, paged);
        foreach (var bad in new[] { "?limit=0", "?limit=201", "?before=nonsense", "?before=bTox" })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync(Conversations.Path + bad, pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ArchivedConversationsAreListedOnlyWhenAskedFor(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var defaultId = Assert.Single(await Conversations.ListIdsAsync(client, pair.AccessToken));
        var kept = await Conversations.CreateIdAsync(client, pair.AccessToken, "kept");
        var archived = await Conversations.CreateIdAsync(client, pair.AccessToken, "archived");

        var patched = await Conversations.PatchAsync(client, pair.AccessToken, archived, new { archived = true });

        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.True((await patched.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("archived").GetBoolean());
        Assert.Equal([kept, defaultId], await Conversations.ListIdsAsync(client, pair.AccessToken));
        Assert.Equal([kept, defaultId], await Conversations.ListIdsAsync(client, pair.AccessToken, "?archived=false"));
        Assert.Equal([archived], await Conversations.ListIdsAsync(client, pair.AccessToken, "?archived=true"));
        Assert.True((await Conversations.GetAsync(client, pair.AccessToken, archived)).GetProperty("archived").GetBoolean());

        Assert.Equal(HttpStatusCode.OK, (await Conversations.PatchAsync(client, pair.AccessToken, archived, new { archived = false })).StatusCode);
        Assert.Equal([archived, kept, defaultId], await Conversations.ListIdsAsync(client, pair.AccessToken));
        Assert.Empty(await Conversations.ListIdsAsync(client, pair.AccessToken, "?archived=true"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task PatchChangesTitleModelAndArchivedAndBadInputChangesNothing(StoreProvider provider)
    {
        await using var api = await OnAsync(TwoModels(new ApiFactory()), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "First title");

        var renamed = await Conversations.PatchAsync(client, pair.AccessToken, id, new { title = " Second title " });
        var remodelled = await Conversations.PatchAsync(client, pair.AccessToken, id, new { model = "premium-model", archived = true });
        var unchanged = await Conversations.PatchAsync(client, pair.AccessToken, id, new { });

        Assert.Equal("Second title", (await renamed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("title").GetString());
        var after = await remodelled.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(("Second title", "premium-model", true), (after.GetProperty("title").GetString(), after.GetProperty("model").GetString(), after.GetProperty("archived").GetBoolean()));
        Assert.Equal(after.GetRawText(), (await unchanged.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetRawText());

        foreach (var bad in new object[] { new { title = "" }, new { title = "  " }, new { title = new string('t', 201) }, new { title = "tab\there", model = "house-model" } })
        {
            await ApiPipelineTests.AssertProblemAsync(await Conversations.PatchAsync(client, pair.AccessToken, id, bad), HttpStatusCode.UnprocessableEntity, "validation_failed");
        }

        foreach (var bad in new object[] { new { model = "gpt-99" }, new { title = "A fine title", model = "gpt-99", archived = false } })
        {
            await ApiPipelineTests.AssertProblemAsync(await Conversations.PatchAsync(client, pair.AccessToken, id, bad), HttpStatusCode.UnprocessableEntity, "unknown_model");
        }

        Assert.Equal(after.GetRawText(), (await Conversations.GetAsync(client, pair.AccessToken, id)).GetRawText());
        await ApiPipelineTests.AssertProblemAsync(await Conversations.PatchAsync(client, pair.AccessToken, Guid.NewGuid(), new { title = "x" }), HttpStatusCode.NotFound, "not_found");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingAConversationRemovesItsMessagesTurnsAndEventsAndNothingElse(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: null);
        var gone = await Conversations.CreateIdAsync(client, pair.AccessToken, "to delete");
        var stays = await Conversations.CreateIdAsync(client, pair.AccessToken, "to keep");
        List<Guid> goneTurns =
        [
            (await Conversations.AnswerAsync(client, pair.AccessToken, gone, "my name is Ana")).GetProperty("turn_id").GetGuid(),
            (await Conversations.AnswerAsync(client, pair.AccessToken, gone, "Please remember that my sister's birthday is on the 3rd of May.")).GetProperty("turn_id").GetGuid(),
        ];
        List<Guid> staysTurns = [(await Conversations.AnswerAsync(client, pair.AccessToken, stays, "hello")).GetProperty("turn_id").GetGuid()];
        var goneBefore = await Conversations.RowsAsync(api, gone, goneTurns);
        var staysBefore = await Conversations.RowsAsync(api, stays, staysTurns);
        var staysMessages = await Conversations.MessagesAsync(client, pair.AccessToken, stays);
        Assert.Equal((4, 2), (goneBefore.Messages, goneBefore.Turns));
        Assert.True(goneBefore.Events > 0);

        var deleted = await Conversations.DeleteAsync(client, pair.AccessToken, gone);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal((0, 0, 0), await Conversations.RowsAsync(api, gone, goneTurns));
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM conversations WHERE id = @gone", new { gone }));
        Assert.Equal(staysBefore, await Conversations.RowsAsync(api, stays, staysTurns));
        Assert.Equal(
            staysMessages.Select(m => m.GetRawText()),
            (await Conversations.MessagesAsync(client, pair.AccessToken, stays)).Select(m => m.GetRawText()));
        var list = await Conversations.ListIdsAsync(client, pair.AccessToken);
        Assert.Equal(2, list.Count);
        Assert.Equal(stays, list[0]);

        // The agent's memory is not the conversation's: the block it wrote and the passage it saved stay.
        var memory = await GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory");
        Assert.Equal("Name: Ana", memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == "human").GetProperty("value").GetString());
        Assert.Equal(1, memory.GetProperty("archival_passages").GetInt32());
        var passage = Assert.Single((await GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory/archival")).GetProperty("passages").EnumerateArray());
        Assert.Contains("3rd of May", passage.GetProperty("content").GetString());
        Assert.Single((await GetJsonAsync(client, pair.AccessToken, "/api/v1/agent/memory/changes")).GetProperty("changes").EnumerateArray());

        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync($"{Conversations.Path}/{gone}", pair.AccessToken), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync($"{Conversations.Path}/{gone}/messages", pair.AccessToken), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.DeleteAsync(client, pair.AccessToken, gone), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(await Conversations.SendAsync(client, pair.AccessToken, gone, "are you there?"), HttpStatusCode.NotFound, "not_found");
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages WHERE conversation_id = @gone", new { gone }));
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM turns"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingAConversationWhileItAnswersIsConversationBusyAndChangesNothing(StoreProvider provider)
    {
        var model = new GatedChatClient();
        await using var api = await OnAsync(new ApiFactory().WithServices(s => s.UseModel(model)), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var id = await Conversations.CreateIdAsync(client, pair.AccessToken, "busy");
        var answering = Conversations.SendAsync(client, pair.AccessToken, id, "take your time");
        await model.WaitUntilHeldAsync(1);

        var refused = await Conversations.DeleteAsync(client, pair.AccessToken, id);

        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.Conflict, "conversation_busy");
        Assert.Equal(2, (await Conversations.GetAsync(client, pair.AccessToken, id)).GetProperty("message_count").GetInt32());
        Assert.Equal(2, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages WHERE conversation_id = @id", new { id }));

        model.Open();
        var answer = await answering;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(model.Answer, (await answer.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("assistant_message").GetProperty("content").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await Conversations.DeleteAsync(client, pair.AccessToken, id)).StatusCode);
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM messages WHERE conversation_id = @id", new { id }));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AfterTheDefaultConversationIsDeletedTheNextSingleChatMessageStartsANewOne(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        var other = await Conversations.CreateIdAsync(client, pair.AccessToken, "other");
        var first = await Conversations.GetAsync(client, pair.AccessToken, (await Conversations.ListIdsAsync(client, pair.AccessToken))[1]);
        Assert.True(first.GetProperty("is_default").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "before")), Ct)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await Conversations.DeleteAsync(client, pair.AccessToken, first.GetProperty("id").GetGuid())).StatusCode);

        Assert.Empty(await ChatTests.HistoryAsync(client, pair.AccessToken, 10));
        Assert.Equal([other], await Conversations.ListIdsAsync(client, pair.AccessToken));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "after")), Ct)).StatusCode);
        var list = (await Conversations.ListAsync(client, pair.AccessToken)).GetProperty("conversations").EnumerateArray().ToList();
        Assert.Equal(2, list.Count);
        Assert.True(list[0].GetProperty("is_default").GetBoolean());
        Assert.NotEqual(first.GetProperty("id").GetGuid(), list[0].GetProperty("id").GetGuid());
        Assert.Equal(["after"], Conversations.Contents((await ChatTests.HistoryAsync(client, pair.AccessToken, 10)).Where(m => m.GetProperty("role").GetString() == "user")));
    }

    /// <summary>A catalogue of two priced models: <c>house-model</c> (the default) and <c>premium-model</c>.</summary>
    internal static ApiFactory TwoModels(ApiFactory api) => api
        .WithSetting("Llm:Models:0:Id", "house-model")
        .WithSetting("Llm:Models:0:ContextWindow", "32000")
        .WithSetting("Llm:Models:0:MaxOutputTokens", "2000")
        .WithSetting("Llm:Models:0:InputPerMillionUsd", "1.25")
        .WithSetting("Llm:Models:0:OutputPerMillionUsd", "5")
        .WithSetting("Llm:Models:0:Default", "true")
        .WithSetting("Llm:Models:1:Id", "premium-model")
        .WithSetting("Llm:Models:1:ContextWindow", "64000")
        .WithSetting("Llm:Models:1:MaxOutputTokens", "4000")
        .WithSetting("Llm:Models:1:InputPerMillionUsd", "3")
        .WithSetting("Llm:Models:1:OutputPerMillionUsd", "15");

    internal static async Task<JsonElement> GetJsonAsync(HttpClient client, string token, string path)
    {
        var response = await client.GetWithTokenAsync(path, token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
