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

namespace AiChat.Tests.Proof;

/// <summary>
/// One API on one store with an owner who has one of everything (a titled conversation with a finished turn, a memory
/// change, an archival passage), an admin, and a way to fingerprint the whole store (rows and content of every table).
/// </summary>
public sealed class SeededApi : IAsyncDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private SeededApi(ApiFactory api, HttpClient client)
    {
        Api = api;
        Client = client;
    }

    public ApiFactory Api { get; }

    public HttpClient Client { get; }

    public TokenPair Owner { get; private set; } = null!;

    public TokenPair Admin { get; private set; } = null!;

    /// <summary>A second user with a valid token and data of their own, who must never reach the owner's.</summary>
    public TokenPair Intruder { get; private set; } = null!;

    public Guid IntruderConversationId { get; private set; }

    public Guid ConversationId { get; private set; }

    public Guid TurnId { get; private set; }

    public Guid UserMessageId { get; private set; }

    public Guid AssistantMessageId { get; private set; }

    public string PassageId { get; private set; } = "";

    public Guid ChangeId { get; private set; }

    public static async Task<SeededApi> StartAsync(StoreProvider provider, PostgresServer postgres)
    {
        var api = new ApiFactory()
            .WithSetting("Chat:RateLimits:MessagesPerMinute", "10000")
            .WithSetting("Auth:RateLimits:PerClientAddress", "10000")
            .WithSetting("Auth:RateLimits:PerEmail", "10000");
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        var seeded = new SeededApi(api, api.CreateClient());
        await seeded.SeedAsync();
        return seeded;
    }

    /// <summary>Replaces {conversation}, {turn}, {message}, {user_message}, {passage}, {change}, {owner}, {intruder}, {intruder_conversation} in a path.</summary>
    public string Resolve(string path) => path
        .Replace("{conversation}", ConversationId.ToString())
        .Replace("{turn}", TurnId.ToString())
        .Replace("{message}", AssistantMessageId.ToString())
        .Replace("{user_message}", UserMessageId.ToString())
        .Replace("{passage}", PassageId)
        .Replace("{change}", ChangeId.ToString())
        .Replace("{owner}", Owner.UserId.ToString())
        .Replace("{intruder_conversation}", IntruderConversationId.ToString())
        .Replace("{intruder}", Intruder.UserId.ToString());

    /// <summary>What only the owner's data holds: its ids, email and words; none may reach another user.</summary>
    public IReadOnlyList<string> OwnerMarkers() =>
    [
        Owner.UserId.ToString(), ConversationId.ToString(), TurnId.ToString(), UserMessageId.ToString(), AssistantMessageId.ToString(),
        PassageId, ChangeId.ToString(), Owner.User.GetProperty("email").GetString()!, "cello", "patient helper",
    ];

    /// <summary>Every table's row count and a hash of its rows (order-independent): equal fingerprints, unchanged store.</summary>
    public async Task<IReadOnlyDictionary<string, string>> FingerprintAsync()
    {
        var db = Api.Services.GetRequiredService<AiChatDb>();
        await using var connection = await db.OpenAsync(Ct);
        var postgres = db.Provider == StoreProvider.Postgres;
        var tables = await connection.QueryAsync<string>(postgres
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
        var fingerprint = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var table in tables)
        {
            IEnumerable<string> rows = postgres
                ? await connection.QueryAsync<string>($"SELECT t::text FROM \"{table}\" t")
                : (await connection.QueryAsync($"SELECT * FROM \"{table}\"")).Select(row =>
                    string.Join("|", ((IDictionary<string, object?>)row).Select(pair => $"{pair.Key}={Convert.ToString(pair.Value, System.Globalization.CultureInfo.InvariantCulture)}")));
            var sorted = rows.Order(StringComparer.Ordinal).ToList();
            var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", sorted))))[..16];
            fingerprint[table] = $"{sorted.Count} rows {hash}";
        }

        return fingerprint;
    }

    /// <summary>Polls until two fingerprints in a row agree (background work of the seed is done), within a deadline.</summary>
    public async Task<IReadOnlyDictionary<string, string>> SettledFingerprintAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var last = await FingerprintAsync();
        while (true)
        {
            await Task.Delay(25, Ct);
            var next = await FingerprintAsync();
            if (next.SequenceEqual(last))
            {
                return next;
            }

            Assert.True(DateTime.UtcNow < deadline, "The store did not settle after the seed.");
            last = next;
        }
    }

    public static void AssertUnchanged(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after)
    {
        var changed = before.Keys.Union(after.Keys)
            .Where(table => before.GetValueOrDefault(table) != after.GetValueOrDefault(table))
            .Select(table => $"{table}: {before.GetValueOrDefault(table)} -> {after.GetValueOrDefault(table)}")
            .ToList();
        Assert.True(changed.Count == 0, "The store changed: " + string.Join("; ", changed));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Api.DisposeAsync();
    }

    private async Task SeedAsync()
    {
        Owner = await Client.RegisterAsync(Accounts.NewEmail("owner"));
        Admin = await Client.RegisterAdminAsync(Api);
        ConversationId = await Conversations.CreateIdAsync(Client, Owner.AccessToken, "Seed");

        var answer = await Conversations.AnswerAsync(Client, Owner.AccessToken, ConversationId, "my name is Ana");
        TurnId = answer.GetProperty("turn_id").GetGuid();
        UserMessageId = answer.GetProperty("user_message").GetProperty("id").GetGuid();
        AssistantMessageId = answer.GetProperty("assistant_message").GetProperty("id").GetGuid();

        var passage = await Client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", Owner.AccessToken, new { content = "Ana plays the cello." });
        Assert.Equal(HttpStatusCode.Created, passage.StatusCode);
        PassageId = (await passage.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;

        var edit = await Client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", Owner.AccessToken, new { blocks = new[] { new { label = "persona", value = "A patient helper." } } });
        Assert.Equal(HttpStatusCode.OK, edit.StatusCode);
        var changes = await Client.GetWithTokenAsync("/api/v1/agent/memory/changes", Owner.AccessToken);
        ChangeId = (await changes.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("changes")[0].GetProperty("id").GetGuid();

        Intruder = await Client.RegisterAsync(Accounts.NewEmail("intruder"), name: "Bo");
        IntruderConversationId = (await Conversations.ListIdsAsync(Client, Intruder.AccessToken)).Single();

        // Titled by its user, so no background title write follows the turn (untitled conversations get one).
        Assert.Equal(HttpStatusCode.OK, (await Conversations.PatchAsync(Client, Intruder.AccessToken, IntruderConversationId, new { title = "Bo's" })).StatusCode);
        await Conversations.AnswerAsync(Client, Intruder.AccessToken, IntruderConversationId, "hello there");
    }
}

/// <summary>One <see cref="SeededApi"/> per store for a whole test class (started on first use).</summary>
public sealed class SeededApis : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<StoreProvider, SeededApi> _apis = [];

    public async Task<SeededApi> GetAsync(StoreProvider provider, PostgresServer postgres)
    {
        await _gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!_apis.TryGetValue(provider, out var api))
            {
                _apis[provider] = api = await SeededApi.StartAsync(provider, postgres);
            }

            return api;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var api in _apis.Values)
        {
            await api.DisposeAsync();
        }

        _gate.Dispose();
    }
}
