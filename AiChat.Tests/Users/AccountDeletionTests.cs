using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Users;

/// <summary>
/// <c>DELETE /api/v1/user</c> on both stores, checked in the store itself: an owner with a row in every table that holds
/// user data (found by reading the schema, not from a list) is deleted, and afterwards no row of any table holds one of
/// the owner's ids, the full-text indexes know none of the owner's words, and every other account's rows are untouched.
/// A table added later that the owner's data does not reach fails the test until the seed below reaches it.
/// </summary>
[Trait("Category", "Users")]
public sealed class AccountDeletionTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Tables that hold no account's data: the migrations' journal, Data Protection's key ring.</summary>
    private static readonly string[] NoUserData = ["schemaversions", "data_protection_keys"];

    /// <summary>SQLite's full-text indexes (and their shadow tables) over messages and passages: searched by word instead.</summary>
    private static readonly string[] FullTextIndexes = ["messages_fts", "archival_passages_fts"];

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingAnAccountRemovesEveryRowItOwnsInEveryTableAndTouchesNoOneElses(StoreProvider provider)
    {
        await using var api = await new ApiFactory()
            .WithSetting("Chat:RateLimits:MessagesPerMinute", "10000")
            .WithSetting("Auth:RateLimits:PerClientAddress", "10000")
            .OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var word = $"zyx{Guid.NewGuid():N}"[..16];
        var admin = await client.RegisterAdminAsync(api);
        var owner = await SeedAsync(client, admin, word);
        var bystander = await SeedAsync(client, admin, $"other{word}");

        var owned = await OwnedIdsAsync(api, owner.UserId);
        var tables = await TablesAsync(api);
        var before = await SettledAsync(api, tables, owned);

        // The seed reaches every table that holds user data: a table it misses would go unchecked below.
        var unreached = tables.Where(table => !NoUserData.Contains(table, StringComparer.OrdinalIgnoreCase) && before[table].Owned == 0).ToList();
        Assert.True(unreached.Count == 0, $"The owner has no row in: {string.Join(", ", unreached)}. Seed them (or list a table that holds no user data).");
        Assert.Equal(2, await FullTextHitsAsync(api, "messages_fts", word)); // the message and the answer quoting it
        Assert.Equal(1, await FullTextHitsAsync(api, "archival_passages_fts", word));

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", owner.AccessToken)).StatusCode);

        var after = await SettledAsync(api, tables, owned);
        var left = tables.Where(table => after[table].Owned != 0).Select(table => $"{table}: {after[table].Owned}").ToList();
        Assert.True(left.Count == 0, $"Rows of the deleted account are left in: {string.Join(", ", left)}");
        Assert.Equal(0, await FullTextHitsAsync(api, "messages_fts", word));
        Assert.Equal(0, await FullTextHitsAsync(api, "archival_passages_fts", word));
        var changed = tables.Where(table => before[table].Others != after[table].Others).ToList();
        Assert.True(changed.Count == 0, $"Rows of other accounts changed in: {string.Join(", ", changed)}");
        Assert.Equal(2, await FullTextHitsAsync(api, "messages_fts", $"other{word}"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/user/profile", owner.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/user/profile", bystander.AccessToken)).StatusCode);
    }

    /// <summary>
    /// An account with one of everything: sessions, named conversations with turns (a memory tool call, usage on the
    /// ledger), a memory edit, a passage, an API key, a conversation of an OpenAI-compatible client, an admin grant.
    /// </summary>
    private static async Task<TokenPair> SeedAsync(HttpClient client, TokenPair admin, string word)
    {
        var email = Accounts.NewEmail("owner");
        var password = Accounts.NewPassword();
        var pair = await client.RegisterAsync(email, password);
        await client.LoginAsync(email, password);

        // Conversations named by their user, so no background title write follows their turns.
        await ChatTests.NameDefaultConversationAsync(client, pair.AccessToken);
        await Conversations.AnswerAsync(client, pair.AccessToken, await ConversationRequests.DefaultAsync(client, pair.AccessToken), "my name is Ana");
        var named = await Conversations.CreateIdAsync(client, pair.AccessToken, "Seed");
        await Conversations.AnswerAsync(client, pair.AccessToken, named, $"I like the word {word}");

        Assert.Equal(HttpStatusCode.Created, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", pair.AccessToken, new { content = $"Ana says {word}." })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "persona", value = "A patient helper." } } })).StatusCode);

        var key = await ApiKeys.CreateAsync(client, pair.AccessToken);
        var viaKey = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = "aichat-offline", messages = new[] { new { role = "user", content = "hello" } } }),
        };
        viaKey.Headers.Authorization = new("Bearer", key.Key);
        var completion = await client.SendAsync(viaKey, Ct);
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        var threadConversation = Guid.Parse(completion.Headers.GetValues("X-AiChat-Conversation").Single());
        Assert.Equal(HttpStatusCode.OK, (await Conversations.PatchAsync(client, pair.AccessToken, threadConversation, new { title = "Via the key" })).StatusCode);

        Assert.Equal(HttpStatusCode.Created, (await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{pair.UserId}/admin", admin.AccessToken)).StatusCode);
        return pair;
    }

    /// <summary>
    /// The owner's ids: the user's, then the id of every row that holds one of them (agent, conversations, turns,
    /// messages, sessions, keys...), until no new one turns up. A row holding any of these ids is the owner's.
    /// </summary>
    private static async Task<HashSet<string>> OwnedIdsAsync(ApiFactory api, Guid userId)
    {
        var owned = new HashSet<string> { userId.ToString() };
        var tables = await TablesAsync(api);
        for (var grown = true; grown;)
        {
            grown = false;
            foreach (var table in tables)
            {
                foreach (var row in await RowsAsync(api, table))
                {
                    if (row.TryGetValue("id", out var id) && id is not null && Holds(row, owned))
                    {
                        grown |= owned.Add(id);
                    }
                }
            }
        }

        return owned;
    }

    /// <summary>Per table: how many rows hold an owned id, and a hash of all the other rows.</summary>
    private static async Task<Dictionary<string, (int Owned, string Others)>> SnapshotAsync(ApiFactory api, IReadOnlyList<string> tables, HashSet<string> owned)
    {
        var snapshot = new Dictionary<string, (int, string)>();
        foreach (var table in tables)
        {
            var rows = await RowsAsync(api, table);
            var mine = rows.Count(row => Holds(row, owned));
            var others = rows.Where(row => !Holds(row, owned))
                .Select(row => string.Join("|", row.OrderBy(pair => pair.Key, StringComparer.Ordinal).Select(pair => $"{pair.Key}={pair.Value}")))
                .Order(StringComparer.Ordinal);
            snapshot[table] = (mine, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", others)))));
        }

        return snapshot;
    }

    /// <summary>A snapshot once two in a row agree (work a request left running, like a last-used time, is done).</summary>
    private static async Task<Dictionary<string, (int Owned, string Others)>> SettledAsync(ApiFactory api, IReadOnlyList<string> tables, HashSet<string> owned)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var last = await SnapshotAsync(api, tables, owned);
        while (true)
        {
            await Task.Delay(50, Ct);
            var next = await SnapshotAsync(api, tables, owned);
            if (next.All(pair => last[pair.Key] == pair.Value))
            {
                return next;
            }

            Assert.True(DateTime.UtcNow < deadline, "The store did not settle.");
            last = next;
        }
    }

    /// <summary>Every table of the store but SQLite's full-text indexes and their shadow tables.</summary>
    private static async Task<IReadOnlyList<string>> TablesAsync(ApiFactory api)
    {
        var db = api.Services.GetRequiredService<AiChatDb>();
        await using var connection = await db.OpenAsync(Ct);
        var tables = await connection.QueryAsync<string>(db.Provider == StoreProvider.Postgres
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
        return tables.Where(table => !FullTextIndexes.Any(index => table.StartsWith(index, StringComparison.Ordinal))).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>A table's rows as column → text, ids in one spelling on both stores.</summary>
    private static async Task<List<Dictionary<string, string?>>> RowsAsync(ApiFactory api, string table)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return (await connection.QueryAsync($"SELECT * FROM \"{table}\"")).Cast<IDictionary<string, object?>>()
            .Select(row => row.ToDictionary(pair => pair.Key, pair => Text(pair.Value)))
            .ToList();
    }

    private static bool Holds(Dictionary<string, string?> row, HashSet<string> ids) => row.Values.Any(value => value is not null && ids.Contains(value));

    private static string? Text(object? value) => value switch
    {
        null or DBNull => null,
        Guid guid => guid.ToString(),
        string text when Guid.TryParse(text, out var guid) => guid.ToString(),
        byte[] { Length: 16 } bytes => new Guid(bytes).ToString(),
        byte[] bytes => Convert.ToHexString(bytes),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    /// <summary>How many rows of a full-text index match a word (SQLite's FTS5; on Postgres the search column is its row's).</summary>
    private static async Task<long> FullTextHitsAsync(ApiFactory api, string index, string word)
    {
        var db = api.Services.GetRequiredService<AiChatDb>();
        await using var connection = await db.OpenAsync(Ct);
        var table = index[..^"_fts".Length];
        return await connection.ExecuteScalarAsync<long>(db.Provider == StoreProvider.Postgres
            ? $"SELECT COUNT(*) FROM {table} WHERE search @@ plainto_tsquery('english', @word)"
            : $"SELECT COUNT(*) FROM {index} WHERE {index} MATCH @word", new { word });
    }
}
