using AiChat.Api.Data;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiChat.Tests.Infrastructure;

/// <summary>A fresh, empty store on one provider: a SQLite file in a temp folder, or a new Postgres database.</summary>
public sealed class TestStore : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _dataSource;
    private readonly string? _directory;

    private TestStore(StoreProvider provider, AiChatDb db, string connectionString, NpgsqlDataSource? dataSource, string? directory)
    {
        Provider = provider;
        Db = db;
        ConnectionString = connectionString;
        _dataSource = dataSource;
        _directory = directory;
    }

    public static TheoryData<StoreProvider> Providers => [StoreProvider.Sqlite, StoreProvider.Postgres];

    /// <summary>Every named case on each store: the rows of a data-driven matrix.</summary>
    public static TheoryData<StoreProvider, string> OnEachProvider(IEnumerable<string> names)
    {
        var data = new TheoryData<StoreProvider, string>();
        var cases = names.ToList();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            foreach (var name in cases)
            {
                data.Add(provider, name);
            }
        }

        return data;
    }

    public StoreProvider Provider { get; }

    public AiChatDb Db { get; }

    /// <summary>For Postgres the connection string; for SQLite the data folder.</summary>
    public string ConnectionString { get; }

    public static async Task<TestStore> CreateAsync(StoreProvider provider, PostgresServer postgres)
    {
        TypeHandlers.Register();
        if (provider == StoreProvider.Postgres)
        {
            var connectionString = await postgres.CreateDatabaseAsync();
            var dataSource = NpgsqlDataSource.Create(connectionString);
            return new TestStore(provider, AiChatDb.ForPostgres(dataSource, connectionString), connectionString, dataSource, null);
        }

        var directory = Path.Combine(Path.GetTempPath(), $"aichat-test-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        return new TestStore(provider, AiChatDb.ForSqlite(Path.Combine(directory, "aichat.db")), directory, null, directory);
    }

    /// <summary>A migrator as a separate API instance would have it: its own connections to the same store.</summary>
    public StoreMigrator NewMigrator() => new(
        Provider == StoreProvider.Postgres
            ? AiChatDb.ForPostgres(_dataSource!, ConnectionString)
            : AiChatDb.ForSqlite(Db.SqliteFilePath!),
        Options.Create(new StoreOptions()),
        NullLogger<StoreMigrator>.Instance);

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        if (_directory is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A pooled handle may linger on some platforms; the temp folder is cleaned by the OS.
            }
        }
    }
}
