using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

[assembly: AssemblyFixture(typeof(AiChat.Tests.Infrastructure.PostgresServer))]
[assembly: AssemblyFixture(typeof(AiChat.Tests.Infrastructure.SecretLeakCheck))]

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// The Postgres the tests run against: the server named by <c>AICHAT_TEST_POSTGRES</c> (an admin connection
/// string; <c>.ci/run</c> sets it), else a throwaway cluster started from Debian's postgresql binaries.
/// Every test gets a database of its own.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "AICHAT_TEST_POSTGRES";

    private readonly List<string> _databases = [];
    private string? _clusterDirectory;
    private string? _pgCtl;

    public string? AdminConnectionString { get; private set; }

    public string? Unavailable { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            AdminConnectionString = configured;
        }
        else
        {
            try
            {
                AdminConnectionString = await StartThrowawayClusterAsync();
            }
            catch (Exception ex)
            {
                Unavailable = ex.Message;
                return;
            }
        }

        try
        {
            await using var connection = new NpgsqlConnection(AdminConnectionString);
            await connection.OpenAsync();
        }
        catch (Exception ex)
        {
            Unavailable = $"Postgres at {EnvironmentVariable} did not answer: {ex.Message}";
        }
    }

    /// <summary>A new, empty database; its connection string. Fails in CI, skips elsewhere, when no Postgres is there.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        if (AdminConnectionString is null || Unavailable is not null)
        {
            Prerequisite.Missing($"Postgres ({Unavailable ?? "not configured"}). Set {EnvironmentVariable} or install Debian's postgresql package.");
        }

        var name = $"aichat_test_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        lock (_databases)
        {
            _databases.Add(name);
        }

        // A bounded pool, as in production: a server's connection slots are shared by every test running at once.
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, Pooling = true, MaxPoolSize = 20 }.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception ex)
        {
            AssemblyCleanup.Report("postgres", ex.ToString());
            throw;
        }
    }

    private async Task StopAsync()
    {
        if (_clusterDirectory is not null)
        {
            await RunAsync(_pgCtl!, ["-D", _clusterDirectory, "-m", "immediate", "stop"], allowFailure: true);
            Directory.Delete(_clusterDirectory, recursive: true);
            return;
        }

        if (AdminConnectionString is null || Unavailable is not null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        foreach (var name in _databases)
        {
            await DropAsync(connection, name);
        }
    }

    // FORCE terminates the database's other sessions; an autovacuum worker in it belongs to no role, and a role that is
    // not a superuser (nor in pg_signal_backend) may not end it: the drop is refused until the worker is done.
    private static async Task DropAsync(NpgsqlConnection connection, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
                await command.ExecuteNonQueryAsync();
                return;
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.ObjectInUse && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private async Task<string> StartThrowawayClusterAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin")).OrderDescending().FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException($"{EnvironmentVariable} is not set and no Postgres binaries were found under /usr/lib/postgresql");
        }

        _pgCtl = Path.Combine(bin, "pg_ctl");
        _clusterDirectory = Path.Combine(Path.GetTempPath(), $"aichat-pg-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_clusterDirectory);
        var port = Loopback.FreePort();

        // initdb refuses to run as root: as root, the cluster belongs to the postgres user.
        if (Environment.UserName == "root")
        {
            await RunAsync("chown", ["postgres:postgres", _clusterDirectory]);
        }

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", _clusterDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        await RunAsync(_pgCtl, ["-D", _clusterDirectory, "-w", "-l", Path.Combine(_clusterDirectory, "server.log"),
            "-o", $"-p {port} -k {_clusterDirectory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300", "start"]);
        return $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres";
    }


    /// <summary>Runs one of Postgres's programs (as the postgres user when this is root); fails with its output unless <paramref name="allowFailure"/>.</summary>
    internal static async Task RunAsync(string file, string[] arguments, bool allowFailure = false)
    {
        var asRoot = Environment.UserName == "root" && file != "chown";
        var start = asRoot
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", file, .. arguments])
            : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0 && !allowFailure)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {await error}{await output}");
        }
    }
}
