using System.Diagnostics;
using DbUp;
using DbUp.Builder;
using DbUp.Engine.Output;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiChat.Api.Data;

/// <summary>
/// Applies the embedded SQL migrations with DbUp before the API takes requests.
/// Several instances may start at once: Postgres serialises them with an advisory lock,
/// SQLite with an exclusive lock file beside the database.
/// </summary>
public sealed partial class StoreMigrator(AiChatDb db, IOptions<StoreOptions> options, ILogger<StoreMigrator> logger) : IHostedService
{
    // Any fixed 64-bit number works; it names AiChat's migration lock among the database's advisory locks.
    private const long PostgresLockKey = 0x41694368617444; // "AiChatD"

    public Task StartAsync(CancellationToken cancellationToken) => MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.GetTimestamp();
        await using IAsyncDisposable migrationLock = db.Provider == StoreProvider.Postgres
            ? (IAsyncDisposable)await PostgresLock.AcquireAsync(db.MigrationConnectionString, options.Value.MigrationLockTimeout, cancellationToken)
            : await FileLock.AcquireAsync(db.SqliteFilePath! + ".migrate.lock", options.Value.MigrationLockTimeout, cancellationToken);

        if (db.Provider == StoreProvider.Sqlite)
        {
            await EnableWriteAheadLogAsync(cancellationToken);
        }

        var upgrader = Configure(db.Provider switch
            {
                StoreProvider.Postgres => DeployChanges.To.PostgresqlDatabase(db.MigrationConnectionString),
                _ => DeployChanges.To.SqliteDatabase(db.MigrationConnectionString),
            })
            .Build();

        var result = upgrader.PerformUpgrade();
        if (!result.Successful)
        {
            throw new InvalidOperationException($"Store migration '{result.ErrorScript?.Name}' failed.", result.Error);
        }

        LogMigrated(logger, db.Provider, result.Scripts.Count(), Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>The scripts that belong to one provider, in name order.</summary>
    public static IEnumerable<string> ScriptNames(StoreProvider provider) =>
        typeof(StoreMigrator).Assembly.GetManifestResourceNames()
            .Where(name => IsScriptOf(provider, name))
            .Order(StringComparer.Ordinal);

    private UpgradeEngineBuilder Configure(UpgradeEngineBuilder builder) => builder
        .WithScriptsEmbeddedInAssembly(typeof(StoreMigrator).Assembly, name => IsScriptOf(db.Provider, name))
        .WithTransactionPerScript()
        .LogTo(new UpgradeLog(logger));

    private static bool IsScriptOf(StoreProvider provider, string resourceName) =>
        resourceName.Contains($".Data.Migrations.{provider}.", StringComparison.Ordinal)
        && resourceName.EndsWith(".sql", StringComparison.Ordinal);

    private async Task EnableWriteAheadLogAsync(CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Store ({Provider}) is up to date: {Applied} migration(s) applied in {ElapsedMs:F0} ms")]
    private static partial void LogMigrated(ILogger logger, StoreProvider provider, int applied, double elapsedMs);

    private sealed class UpgradeLog(ILogger logger) : IUpgradeLog
    {
        public void LogTrace(string format, params object[] args) => logger.LogTrace(format, args);

        public void LogDebug(string format, params object[] args) => logger.LogDebug(format, args);

        public void LogInformation(string format, params object[] args) => logger.LogDebug(format, args);

        public void LogWarning(string format, params object[] args) => logger.LogWarning(format, args);

        public void LogError(string format, params object[] args) => logger.LogError(format, args);

        public void LogError(Exception ex, string format, params object[] args) => logger.LogError(ex, format, args);
    }

    private sealed class PostgresLock(NpgsqlConnection connection) : IAsyncDisposable
    {
        public static async Task<PostgresLock> AcquireAsync(string connectionString, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                NpgsqlConnection? connection = null;
                try
                {
                    connection = new NpgsqlConnection(connectionString);
                    await connection.OpenAsync(cancellationToken);
                    await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", connection);
                    command.Parameters.AddWithValue("key", PostgresLockKey);
                    if (await command.ExecuteScalarAsync(cancellationToken) is true)
                    {
                        return new PostgresLock(connection);
                    }
                }
                catch (NpgsqlException ex) when (ex.IsTransient && DateTime.UtcNow < deadline)
                {
                    // The database may still be starting; keep trying until the deadline.
                }

                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }

                if (DateTime.UtcNow >= deadline)
                {
                    throw new TimeoutException("Another instance held the store migration lock for too long.");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var command = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection);
                command.Parameters.AddWithValue("key", PostgresLockKey);
                await command.ExecuteScalarAsync();
            }
            finally
            {
                // Closing the session releases the lock in any case.
                await connection.DisposeAsync();
            }
        }
    }

    private sealed class FileLock(FileStream stream) : IAsyncDisposable
    {
        public static async Task<FileLock> AcquireAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                try
                {
                    // FileShare.None takes an exclusive advisory lock (flock) on Unix and a share lock on Windows.
                    return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
                }
                catch (IOException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
                }
            }
        }

        public ValueTask DisposeAsync() => stream.DisposeAsync();
    }
}
