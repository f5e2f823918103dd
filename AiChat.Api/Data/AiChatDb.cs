using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace AiChat.Api.Data;

/// <summary>
/// The one store of the API: hands out open connections to SQLite or Postgres, counted (connections and commands)
/// into the <c>AiChat.Store</c> meter.
/// </summary>
public sealed class AiChatDb
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqliteConnectionString;
    private string _sqlitePragmas = "";

    private AiChatDb(StoreProvider provider, NpgsqlDataSource? postgres, string? sqliteConnectionString, string migrationConnectionString)
    {
        Provider = provider;
        _postgres = postgres;
        _sqliteConnectionString = sqliteConnectionString;
        MigrationConnectionString = migrationConnectionString;
        Metrics = new StoreMetrics(provider);
    }

    public StoreProvider Provider { get; }

    /// <summary>The full connection string (with credentials), used only by the migrator.</summary>
    internal string MigrationConnectionString { get; }

    /// <summary>Where this store's connections and commands are counted.</summary>
    internal StoreMetrics Metrics { get; }

    /// <summary>The SQLite file, or null on Postgres.</summary>
    public string? SqliteFilePath { get; private init; }

    public static AiChatDb ForPostgres(NpgsqlDataSource dataSource, string connectionString) =>
        new(StoreProvider.Postgres, dataSource, null, connectionString);

    public static AiChatDb ForSqlite(string filePath, string synchronous = "NORMAL")
    {
        if (synchronous is not ("NORMAL" or "FULL"))
        {
            throw new ArgumentOutOfRangeException(nameof(synchronous), synchronous, "Store:SqliteSynchronous is NORMAL or FULL.");
        }

        var connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = filePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            ForeignKeys = true,
            Pooling = true,
            // Microsoft.Data.Sqlite retries a busy database until the command timeout runs out.
            DefaultTimeout = 30,
        }.ToString();
        return new(StoreProvider.Sqlite, null, connectionString, connectionString) { SqliteFilePath = filePath, _sqlitePragmas = $"PRAGMA synchronous={synchronous}; PRAGMA busy_timeout=10000;" };
    }

    private static readonly object Configured = new();

    // The native connections whose settings are made: a pooled one keeps them, so they are set once, not on every open.
    private readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> _configured = new();

    public async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
        {
            var opened = await _postgres.OpenConnectionAsync(cancellationToken);
            Metrics.ConnectionOpened();
            return new CountedConnection(opened, Metrics);
        }

        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(cancellationToken);
        if (!_configured.TryGetValue(connection.Handle!, out _))
        {
            // Per physical connection (the pool hands the same one out again, settings kept): synchronous
            // (Store:SqliteSynchronous, NORMAL by default in WAL mode; see StoreOptions), and a busy_timeout, so SQLite
            // waits for a writer with fine-grained backoff instead of the client's coarse retry sleeps. Part of opening
            // the connection, so not counted as a command (the figures then compare with Postgres').
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = _sqlitePragmas;
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            _configured.AddOrUpdate(connection.Handle!, Configured);
        }

        Metrics.ConnectionOpened();
        return new CountedConnection(connection, Metrics);
    }
}
