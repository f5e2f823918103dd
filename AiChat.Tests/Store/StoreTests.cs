using System.Data.Common;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Dapper;

namespace AiChat.Tests.Store;

/// <summary>The same cases on SQLite and on Postgres: one data model, two stores.</summary>
[Trait("Category", "Store")]
public sealed class StoreTests(PostgresServer postgres)
{
    private static readonly string[] ExpectedTables =
    [
        "users", "agents", "memory_blocks", "archival_passages", "turns", "messages", "turn_events", "billing_accounts", "ledger_entries",
    ];

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MigrationsCreateEveryTableOfTheDataModel(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);

        var tables = await TablesAsync(store);
        Assert.All(ExpectedTables, table => Assert.Contains(table, tables));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MigratingAgainAppliesNothing(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);

        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);
        var journal = (await connection.QueryAsync<string>("SELECT scriptname FROM schemaversions")).ToList();
        Assert.Equal(StoreMigrator.ScriptNames(provider).Count(), journal.Count);
        Assert.Equal(journal.Count, journal.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task InstancesStartingTogetherMigrateTheStoreExactlyOnce(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);

        // Six API instances starting at the same moment against one empty store.
        var start = new TaskCompletionSource();
        var instances = Enumerable.Range(0, 6)
            .Select(_ => store.NewMigrator())
            .Select(migrator => Task.Run(async () =>
            {
                await start.Task;
                await migrator.MigrateAsync(TestContext.Current.CancellationToken);
            }))
            .ToArray();
        start.SetResult();
        await Task.WhenAll(instances);

        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);
        var journal = (await connection.QueryAsync<string>("SELECT scriptname FROM schemaversions")).ToList();
        Assert.Equal(StoreMigrator.ScriptNames(provider).Count(), journal.Count);
        Assert.All(ExpectedTables, table => Assert.Contains(table, TablesAsync(store).Result));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task IdsInstantsAndTextRoundTripUnchanged(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);

        var user = NewUser("Ana Müller 🌍 <script>'", "ana@example.com");
        await InsertUserAsync(connection, user);

        var read = await connection.QuerySingleAsync<UserRow>(
            "SELECT id, email, email_normalized AS EmailNormalized, name, role, created_at AS CreatedAt FROM users WHERE id = @Id", new { user.Id });
        Assert.Equal(user.Id, read.Id);
        Assert.Equal(user.Name, read.Name);
        Assert.Equal("user", read.Role);
        Assert.Equal(user.CreatedAt, read.CreatedAt);
        Assert.Equal(TimeSpan.Zero, read.CreatedAt.Offset);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task InstantsCompareInTimeOrder(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);

        var t0 = new DateTimeOffset(2026, 1, 31, 23, 59, 59, TimeSpan.Zero).AddTicks(9_990);
        // An instant given with another offset is the same moment and must sort as such.
        var instants = new[] { t0.AddDays(1), t0, t0.ToOffset(TimeSpan.FromHours(5)).AddMilliseconds(1), t0.AddYears(-1) };
        foreach (var (instant, i) in instants.Select((x, i) => (x, i)))
        {
            await InsertUserAsync(connection, NewUser($"u{i}", $"u{i}@example.com") with { CreatedAt = instant });
        }

        var later = await connection.QueryAsync<string>(
            "SELECT email FROM users WHERE created_at > @Since ORDER BY created_at", new { Since = t0 });
        Assert.Equal(["u2@example.com", "u0@example.com"], later);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnEmailIsRegisteredOnce(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);

        await InsertUserAsync(connection, NewUser("Ana", "ana@example.com"));
        await Assert.ThrowsAnyAsync<DbException>(() => InsertUserAsync(connection, NewUser("Other Ana", "ana@example.com")));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingAUserRemovesEverythingItOwns(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);

        var ana = NewUser("Ana", "ana@example.com");
        var bob = NewUser("Bob", "bob@example.com");
        await InsertUserAsync(connection, ana);
        await InsertUserAsync(connection, bob);
        foreach (var user in new[] { ana, bob })
        {
            var agentId = Guid.NewGuid();
            await connection.ExecuteAsync(
                "INSERT INTO agents (id, user_id, runtime, created_at) VALUES (@AgentId, @UserId, 'builtin', @Now)",
                new { AgentId = agentId, UserId = user.Id, Now = DateTimeOffset.UtcNow });
            await connection.ExecuteAsync(
                "INSERT INTO memory_blocks (agent_id, label, value, char_limit, updated_at) VALUES (@AgentId, 'human', 'Name: ' || @Name, 5000, @Now)",
                new { AgentId = agentId, user.Name, Now = DateTimeOffset.UtcNow });
            await connection.ExecuteAsync(
                "INSERT INTO messages (id, user_id, role, content, status, created_at) VALUES (@Id, @UserId, 'user', 'hello', 'complete', @Now)",
                new { Id = Guid.NewGuid(), UserId = user.Id, Now = DateTimeOffset.UtcNow });
        }

        await connection.ExecuteAsync("DELETE FROM users WHERE id = @Id", new { ana.Id });

        Assert.Equal(0, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM memory_blocks b JOIN agents a ON a.id = b.agent_id WHERE a.user_id = @Id", new { ana.Id }));
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM messages WHERE user_id = @Id", new { ana.Id }));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM agents"));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM messages WHERE user_id = @Id", new { bob.Id }));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ArchivalPassagesAreFoundByFullTextSearch(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        await using var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken);

        var user = NewUser("Ana", "ana@example.com");
        await InsertUserAsync(connection, user);
        var agentId = Guid.NewGuid();
        await connection.ExecuteAsync("INSERT INTO agents (id, user_id, runtime, created_at) VALUES (@AgentId, @UserId, 'builtin', @Now)",
            new { AgentId = agentId, UserId = user.Id, Now = DateTimeOffset.UtcNow });
        string[] passages = ["Ana is learning to play the cello", "Her cat is called Miso", "She dislikes coriander"];
        foreach (var passage in passages)
        {
            await connection.ExecuteAsync("INSERT INTO archival_passages (id, agent_id, content, created_at) VALUES (@Id, @AgentId, @Content, @Now)",
                new { Id = Guid.NewGuid(), AgentId = agentId, Content = passage, Now = DateTimeOffset.UtcNow });
        }

        // "plays" must find "play": both indexes stem English words.
        var sql = provider == StoreProvider.Postgres
            ? "SELECT content FROM archival_passages WHERE agent_id = @AgentId AND search @@ plainto_tsquery('english', @Query)"
            : "SELECT p.content FROM archival_passages_fts f JOIN archival_passages p ON p.rowid = f.rowid WHERE archival_passages_fts MATCH @Query AND p.agent_id = @AgentId";
        var found = await connection.QueryAsync<string>(sql, new { AgentId = agentId, Query = "plays" });
        Assert.Equal([passages[0]], found);

        await connection.ExecuteAsync("DELETE FROM archival_passages WHERE content = @Content", new { Content = passages[0] });
        Assert.Empty(await connection.QueryAsync<string>(sql, new { AgentId = agentId, Query = "plays" }));
    }

    [Theory]
    [InlineData("NORMAL", 1)]
    [InlineData("FULL", 2)]
    public async Task SqliteRunsInWriteAheadLogModeWithTheChosenDurability(string synchronous, long expected)
    {
        await using var store = await TestStore.CreateAsync(StoreProvider.Sqlite, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        var db = AiChatDb.ForSqlite(store.Db.SqliteFilePath!, synchronous);

        await using var connection = await db.OpenAsync(TestContext.Current.CancellationToken);

        Assert.Equal("wal", await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
        Assert.Equal(expected, await connection.ExecuteScalarAsync<long>("PRAGMA synchronous"));
        Assert.Equal(10_000, await connection.ExecuteScalarAsync<long>("PRAGMA busy_timeout"));
    }

    private static async Task<List<string>> TablesAsync(TestStore store)
    {
        await using var connection = await store.Db.OpenAsync();
        var sql = store.Provider == StoreProvider.Postgres
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            : "SELECT name FROM sqlite_master WHERE type = 'table'";
        return (await connection.QueryAsync<string>(sql)).ToList();
    }

    private static UserRow NewUser(string name, string email) => new(
        Guid.NewGuid(), email, email.ToUpperInvariant(), name, "user",
        DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).AddTicks(1230));

    private static Task<int> InsertUserAsync(DbConnection connection, UserRow user) => connection.ExecuteAsync(
        "INSERT INTO users (id, email, email_normalized, name, created_at, updated_at) VALUES (@Id, @Email, @EmailNormalized, @Name, @CreatedAt, @CreatedAt)",
        user);

    private sealed record UserRow(Guid Id, string Email, string EmailNormalized, string? Name, string Role, DateTimeOffset CreatedAt);
}
