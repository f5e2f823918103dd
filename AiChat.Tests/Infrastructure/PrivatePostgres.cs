namespace AiChat.Tests.Infrastructure;

/// <summary>
/// A Postgres cluster of one test's own, from Debian's binaries, that the test may stop and start again on the same
/// port (never the shared server other tests use). Deleted on dispose.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    private readonly string _pgCtl;
    private readonly string _directory;
    private readonly int _port;

    private PrivatePostgres(string bin, string directory, int port)
    {
        _pgCtl = Path.Combine(bin, "pg_ctl");
        _directory = directory;
        _port = port;
    }

    /// <summary>The cluster's <c>postgres</c> database as its superuser.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres;Timeout=5";

    public static async Task<PrivatePostgres> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin")).OrderDescending().FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            : null;
        if (bin is null)
        {
            Prerequisite.Missing("Debian's postgresql binaries under /usr/lib/postgresql (for a private cluster).");
        }

        var directory = Path.Combine(Path.GetTempPath(), $"aichat-private-pg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var cluster = new PrivatePostgres(bin!, directory, Loopback.FreePort());
        if (Environment.UserName == "root")
        {
            await PostgresServer.RunAsync("chown", ["postgres:postgres", directory]); // initdb refuses to run as root
        }

        await PostgresServer.RunAsync(Path.Combine(bin!, "initdb"), ["-D", directory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        await cluster.UpAsync();
        return cluster;
    }

    /// <summary>Starts the cluster (again) on its port and waits until it accepts connections.</summary>
    public Task UpAsync() => PostgresServer.RunAsync(_pgCtl, ["-D", _directory, "-w", "-l", Path.Combine(_directory, "server.log"),
        "-o", $"-p {_port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off", "start"]);

    /// <summary>A fast shutdown, as a restart does: open sessions are ended, new connections refused.</summary>
    public Task DownAsync() => PostgresServer.RunAsync(_pgCtl, ["-D", _directory, "-w", "-m", "fast", "stop"]);

    public async ValueTask DisposeAsync()
    {
        await PostgresServer.RunAsync(_pgCtl, ["-D", _directory, "-m", "immediate", "stop"], allowFailure: true);
        Directory.Delete(_directory, recursive: true);
    }
}
