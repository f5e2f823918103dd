extern alias api;

using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using api::AiChat.Api.Billing;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiChat.Benchmarks;

/// <summary>
/// One run: starts the stub LLM, the system on SQLite and on Postgres (and nginx), measures every part side by side,
/// and renders one table. Rows: a/b turns on SQLite/Postgres (floor, direct, gateway; 1 and N users), c turns by
/// history length, d nginx against YARP, e idle streams, f history page and agent status, g the ledger.
/// </summary>
public sealed class Benchmark : IAsyncDisposable
{
    private const string Message = "hello";

    private readonly BenchmarkOptions _options;
    private readonly string _work = Path.Combine(Path.GetTempPath(), $"aichat-bench-{Guid.NewGuid():N}");
    private readonly HttpClient _http = Http.NewClient();
    private readonly ResultTable _table = new();
    private readonly List<string> _footnotes = [];
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly Dictionary<int, LoadResult> _floor = [];
    private readonly Dictionary<(string Proxy, int Users), (LoadResult Proxied, LoadResult Direct)> _hops = [];
    private ServiceProcess _stub = null!;
    private ulong _fileLimit;
    private PostgresDatabase? _postgres;

    private Benchmark(BenchmarkOptions options) => _options = options;

    public static async Task<int> RunAsync(BenchmarkOptions options, TextWriter output)
    {
        var fileLimit = FileLimits.Raise(262_144);
        var benchmark = new Benchmark(options) { _fileLimit = fileLimit };
        var failed = false;
        try
        {
            benchmark._footnotes.Add($"Open-file limit of this process and the ones it starts: {fileLimit:#,0}.");
            await benchmark.MeasureAsync();
        }
        catch (Exception ex)
        {
            failed = true;
            benchmark._footnotes.Add($"**The run failed:** {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            await benchmark.DisposeAsync();
        }

        await output.WriteAsync(benchmark._table.Render(benchmark.Header(), benchmark._footnotes));
        await output.FlushAsync();
        return failed ? 1 : 0;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        _owned.Clear();
        if (_postgres is not null)
        {
            await _postgres.DropAsync();
            _postgres = null;
        }

        _http.Dispose();
        if (_options.KeepLogs)
        {
            _footnotes.Add($"Logs of every process: {_work}");
            return;
        }

        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
            // A process may still hold a log file for a moment; the temp folder is the operating system's to clean.
        }
    }

    private async Task MeasureAsync()
    {
        Directory.CreateDirectory(_work);
        var stubPort = ServiceProcess.FreePort();
        _stub = Own(await ServiceProcess.StartAsync("stub", "dotnet", [Builds.Benchmark, StubServer.Role, stubPort.ToString(CultureInfo.InvariantCulture)],
            new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" }, new Uri($"http://127.0.0.1:{stubPort}/"), "/health", _work));

        var sqliteStarting = MeasuredSystem.StartAsync("sqlite", null, _stub.Address, _options, _work);
        (_postgres, var postgresMissing) = await PostgresDatabase.CreateAsync(_options.PostgresAdmin);
        var postgresStarting = _postgres is null ? null : MeasuredSystem.StartAsync("postgres", _postgres.ConnectionString, _stub.Address, _options, _work);
        var sqlite = Own(await sqliteStarting);
        var postgres = postgresStarting is null ? null : Own(await postgresStarting);

        ServiceProcess? nginx = null;
        var nginxMissing = !_options.Nginx || !_options.Runs('a') ? "not run: smoke mode or --no-nginx" : Nginx.Binary is null ? "not run: nginx is not installed (apt-get install -y nginx)" : null;
        if (nginxMissing is null)
        {
            nginx = Own(await Nginx.StartAsync(sqlite.Api.Address, _work));
        }

        if (_options.Runs('a'))
        {
            await TurnsAsync('a', sqlite, nginx);
        }
        else
        {
            NotRun('a', TurnScenarios('a'));
        }

        if (!_options.Runs('b'))
        {
            NotRun('b', TurnScenarios('b'));
        }
        else if (postgres is not null && _options.Runs('a'))
        {
            await TurnsAsync('b', postgres, null);
        }
        else
        {
            var why = postgres is null ? $"skipped: {postgresMissing}" : "not run: part b compares with the floor of part a";
            foreach (var (id, scenario) in TurnScenarios('b'))
            {
                _table.Add(Row.Skipped(id, scenario, why));
            }
        }

        AddHopRows(_options.Runs('a') ? nginxMissing : "not run: --parts");
        if (_options.Runs('c') || _options.Runs('f'))
        {
            await HistoryAsync(sqlite);
        }
        else
        {
            NotRun('c', [("c1", "turns by history length")]);
            NotRun('f', [("f1", "history page and agent status by history length")]);
        }

        if (_options.Runs('g'))
        {
            await LedgerAsync("g1", sqlite);
            if (postgres is not null)
            {
                await LedgerAsync("g2", postgres);
            }
            else
            {
                _table.Add(Row.Skipped("g2", "ledger reserve + settle, Postgres", $"skipped: {postgresMissing}"));
            }
        }
        else
        {
            NotRun('g', [("g1", "ledger reserve + settle")]);
        }

        if (_options.Runs('e'))
        {
            await IdleStreamsAsync(sqlite);
        }
        else
        {
            NotRun('e', [("e1", "idle SSE streams through the gateway")]);
        }

        _footnotes.Add(Describe(postgresMissing, nginx));
    }

    private void NotRun(char part, IEnumerable<(string Id, string Scenario)> rows)
    {
        foreach (var (id, scenario) in rows)
        {
            _table.Add(Row.Skipped(id, scenario, $"not run: --parts {_options.Parts} leaves out {part}"));
        }
    }

    // a/b: the same SSE turn over each path, at 1 user and at N users at once.
    private async Task TurnsAsync(char section, MeasuredSystem system, ServiceProcess? nginx)
    {
        var users = await Task.WhenAll(Enumerable.Range(0, _options.Users).Select(_ => Http.RegisterAsync(_http, system.Api.Address)));
        var ids = TurnScenarios(section).Select(s => s.Id).ToArray();
        var next = 0;

        // Every path warmed first (JIT tiering, connection pools, store caches), so none pays for being measured first.
        foreach (var count in new[] { 1, _options.Users })
        {
            var turns = count == 1 ? _options.SystemWarmupTurns * 4 : _options.SystemWarmupTurns;
            if (section == 'a')
            {
                await Load.RunAsync(count, turns, 0, (_, _) => Http.StreamTurnAsync(_http, _stub.Address, "/floor", null, Message), []);
            }

            await MeasurePathAsync(system, users, count, turns, 0, system.Api.Address, null);
            await MeasurePathAsync(system, users, count, turns, 0, system.Gateway.Address, system.Gateway);
            if (nginx is not null)
            {
                await MeasurePathAsync(system, users, count, turns, 0, nginx.Address, nginx);
            }
        }

        foreach (var count in new[] { 1, _options.Users })
        {
            var (turns, warmup) = count == 1 ? (_options.SingleUserTurns, _options.WarmupTurns) : (_options.TurnsPerUser, Math.Max(1, _options.WarmupTurns / 5));
            var who = count == 1 ? "1 user" : $"{count} users";
            if (section == 'a')
            {
                var floor = await Load.RunAsync(count, turns, warmup, (_, _) => Http.StreamTurnAsync(_http, _stub.Address, "/floor", null, Message), [_stub]);
                _floor[count] = floor;
                _table.Add(Row.Of(ids[next++], $"floor: bare Kestrel SSE relay of the stub, {who}", floor, null, null, _stub.Name));
            }

            var direct = await MeasurePathAsync(system, users, count, turns, warmup, system.Api.Address, null);
            _table.Add(Row.Of(ids[next++], $"SSE turn direct to the API ({system.Store}), {who}", direct, system.Api.Name, null, _stub.Name, TurnNotes(direct, count)));
            var gateway = await MeasurePathAsync(system, users, count, turns, warmup, system.Gateway.Address, system.Gateway);
            _table.Add(Row.Of(ids[next++], $"SSE turn through the gateway ({system.Store}), {who}", gateway, system.Api.Name, system.Gateway.Name, _stub.Name, TurnNotes(gateway, count)));
            if (section == 'a')
            {
                _hops[("YARP", count)] = (gateway, direct);
            }

            if (nginx is not null)
            {
                var proxied = await MeasurePathAsync(system, users, count, turns, warmup, nginx.Address, nginx);
                _hops[("nginx", count)] = (proxied, direct);
                _table.Add(Row.Of(count == 1 ? "d1" : "d2", $"SSE turn through nginx instead ({system.Store}), {who}; proxy CPU is nginx's", proxied, system.Api.Name, nginx.Name, _stub.Name, TurnNotes(proxied, count)));
            }
        }
    }

    private IEnumerable<(string Id, string Scenario)> TurnScenarios(char section)
    {
        var store = section == 'a' ? "SQLite" : "Postgres";
        var n = 1;
        foreach (var who in new[] { "1 user", $"{_options.Users} users" })
        {
            if (section == 'a')
            {
                yield return ($"a{n++}", $"floor: bare Kestrel SSE relay of the stub, {who}");
            }

            yield return ($"{section}{n++}", $"SSE turn direct to the API ({store}), {who}");
            yield return ($"{section}{n++}", $"SSE turn through the gateway ({store}), {who}");
        }
    }

    private async Task<LoadResult> MeasurePathAsync(MeasuredSystem system, BenchUser[] users, int count, int turns, int warmup, Uri address, ServiceProcess? proxy)
    {
        // Fresh conversations for every measured path, each used for a few turns, so every turn has a short history.
        var perUser = (int)Math.Ceiling((double)(turns + warmup) / _options.TurnsPerConversation);
        await Task.WhenAll(users.Take(count).Select(async user =>
        {
            user.Conversations.Clear();
            for (var i = 0; i < perUser; i++)
            {
                user.Conversations.Add(await Http.NewConversationAsync(_http, system.Api.Address, user));
            }
        }));

        ServiceProcess[] measured = proxy is null ? [system.Api, _stub] : [system.Api, proxy, _stub];
        return await Load.RunAsync(count, turns, warmup,
            (u, i) => Http.StreamTurnAsync(_http, address, Http.MessagesPath(users[u].Conversations[i / _options.TurnsPerConversation]), users[u].Token, Message),
            measured, system.Api);
    }

    private string TurnNotes(LoadResult result, int users)
    {
        var floor = _floor[users];
        return string.Create(CultureInfo.InvariantCulture,
            $"p50 ×{result.P50 / floor.P50:0.0} floor, p99 ×{result.P99 / floor.P99:0.0} floor; {result.PromptTokensPerTurn:0} prompt tokens; API log entries/turn {result.LogEntriesPerTurn:0.0}");
    }

    // d3: what the proxy adds to the direct turn, YARP against nginx, at the same load.
    private void AddHopRows(string? nginxMissing)
    {
        if (nginxMissing is not null)
        {
            _table.Add(Row.Skipped("d1", "SSE turn through nginx instead, 1 user", nginxMissing));
            _table.Add(Row.Skipped("d2", $"SSE turn through nginx instead, {_options.Users} users", nginxMissing));
            _table.Add(Row.Skipped("d3", "gateway hop: YARP against nginx", nginxMissing));
            return;
        }

        var parts = new List<string>();
        foreach (var count in new[] { 1, _options.Users })
        {
            var (yarp, yarpDirect) = _hops[("YARP", count)];
            var (nginx, nginxDirect) = _hops[("nginx", count)];
            var yarpHop = yarp.P50 - yarpDirect.P50;
            var nginxHop = nginx.P50 - nginxDirect.P50;
            var yarpCpu = yarp.CpuMsPerTurn(yarp.Cpu.Keys.First(k => k.EndsWith("-gateway", StringComparison.Ordinal)));
            var nginxCpu = nginx.CpuMsPerTurn("nginx");
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"{count} user{(count == 1 ? "" : "s")}: p50 added YARP {yarpHop:0.00} ms, nginx {nginxHop:0.00} ms; p99 YARP {yarp.P99:0.0} vs nginx {nginx.P99:0.0} ms; proxy CPU/turn YARP {yarpCpu:0.00} ms vs nginx {nginxCpu:0.00} ms (×{yarpCpu / nginxCpu:0.0})"));
        }

        _table.Add(new Row("d3", "gateway hop: YARP against nginx (proxied p50 − direct p50 of the same load)", Notes: string.Join("; ", parts)));
    }

    // c and f: a user per history length, its messages stored straight into its default conversation.
    private async Task HistoryAsync(MeasuredSystem system)
    {
        var sizes = _options.HistorySizes;
        var users = new List<(int Size, BenchUser User, Guid Conversation, long LastSeeded)>();
        foreach (var size in sizes)
        {
            var user = await Http.RegisterAsync(_http, system.Api.Address);
            var conversation = await Http.DefaultConversationAsync(_http, system.Api.Address, user);
            users.Add((size, user, conversation, await system.SeedHistoryAsync(user.Id, size)));
        }

        var (small, large) = (users[0], users[^1]);
        var pages = new Dictionary<int, LoadResult>();
        var statuses = new Dictionary<int, LoadResult>();
        foreach (var entry in new[] { small, large })
        {
            pages[entry.Size] = await Load.SequentialAsync(_options.PageRuns, 10, () => Http.GetAsync(_http, system.Api.Address, "/api/v1/chat/history?limit=50", entry.User.Token), [system.Api]);
            statuses[entry.Size] = await Load.SequentialAsync(_options.StatusRuns, 3, () => Http.GetAsync(_http, system.Api.Address, "/api/v1/agent/status", entry.User.Token), [system.Api]);
        }

        var status = await Http.GetJsonAsync(_http, system.Api.Address, "/api/v1/agent/status", large.User.Token);
        _table.Add(Row.Of("f1", $"history page (50) at {small.Size:#,0} messages, direct", pages[small.Size], system.Api.Name, null, null));
        _table.Add(Row.Of("f2", $"history page (50) at {large.Size:#,0} messages, direct", pages[large.Size], system.Api.Name, null, null, Ratio(pages, small.Size, large.Size)));
        _table.Add(Row.Of("f3", $"agent status at {small.Size:#,0} messages, direct", statuses[small.Size], system.Api.Name, null, null));
        _table.Add(Row.Of("f4", $"agent status at {large.Size:#,0} messages, direct", statuses[large.Size], system.Api.Name, null, null,
            Ratio(statuses, small.Size, large.Size) + string.Create(CultureInfo.InvariantCulture, $"; reports message_count {status.GetProperty("message_count").GetInt32():#,0}, context {status.GetProperty("context").GetProperty("tokens").GetInt32():#,0} tokens")));

        var turns = new Dictionary<int, LoadResult>();
        var id = 1;
        foreach (var (size, user, conversation, lastSeeded) in users)
        {
            turns[size] = await Load.RunAsync(1, _options.HistoryTurns, 1, async (_, _) =>
            {
                var outcome = await Http.StreamTurnAsync(_http, system.Gateway.Address, Http.MessagesPath(conversation), user.Token, "What do you remember of our talks?");
                await system.TrimHistoryAsync(conversation, lastSeeded);
                return outcome;
            }, [system.Api, system.Gateway, _stub], system.Api);
            var result = turns[size];
            var notes = string.Create(CultureInfo.InvariantCulture,
                $"{result.PromptTokensPerTurn:#,0} prompt tokens/turn (×{result.PromptTokensPerTurn / turns[small.Size].PromptTokensPerTurn:0.0}) in {result.CallsPerTurn:0.#} LLM call(s); p50 ×{result.P50 / turns[small.Size].P50:0.0}");
            _table.Add(Row.Of($"c{id++}", $"SSE turn through the gateway with {size:#,0} stored messages (SQLite), 1 user", result, system.Api.Name, system.Gateway.Name, _stub.Name, notes));
        }
    }

    private static string Ratio(Dictionary<int, LoadResult> results, int small, int large) =>
        string.Create(CultureInfo.InvariantCulture, $"p50 ×{results[large].P50 / results[small].P50:0.0} the {small:#,0}-message case");

    // g: the ledger's reserve and settle, straight on the store, as every LLM call does them.
    private async Task LedgerAsync(string id, MeasuredSystem system)
    {
        var user = await Http.RegisterAsync(_http, system.Api.Address);
        var ledger = new Ledger(system.Db, Options.Create(new BillingOptions()), TimeProvider.System);
        var result = await Load.SequentialAsync(_options.LedgerRuns, 10, async () =>
        {
            var started = Stopwatch.GetTimestamp();
            var reservation = await ledger.ReserveAsync(user.Id, null, MeasuredSystem.Model, 1_000, CancellationToken.None);
            await ledger.SettleAsync(reservation, 900, 10, 10, MeasuredSystem.Model);
            return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }, []);
        _table.Add(Row.Of(id, $"ledger reserve + settle, {system.Store} (in the benchmark's process)", result, null, null, null));
    }

    // e: many streams that stay open and quiet: followers of turns whose model has gone silent after its first word.
    private async Task IdleStreamsAsync(MeasuredSystem system)
    {
        var memoryBefore = system.Api.ResidentBytes() + system.Gateway.ResidentBytes();
        var holders = await Task.WhenAll(Enumerable.Range(0, _options.IdleTurns).Select(async _ =>
        {
            var user = await Http.RegisterAsync(_http, system.Api.Address);
            var conversation = await Http.NewConversationAsync(_http, system.Api.Address, user);
            return (user, turn: await IdleStreams.StartQuietTurnAsync(_http, system.Gateway.Address, Http.MessagesPath(conversation), user.Token));
        }));

        // The gateway holds two sockets per stream (in from the client, out to the API) under one open-file limit.
        var count = _options.IdleStreams;
        var room = _fileLimit == 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, ((long)_fileLimit - system.Gateway.OpenFiles() - 256) / 2);
        if (count > room)
        {
            count = room;
            _footnotes.Add($"e1 is capped at {count:#,0} streams: the open-file limit here is {_fileLimit:#,0} per process and cannot be raised (setrlimit refused), "
                + "and the gateway holds two sockets per stream.");
        }

        await using var streams = new IdleStreams(system.Gateway.Address);
        var opening = Stopwatch.GetTimestamp();
        await streams.OpenAsync(Enumerable.Range(0, count).Select(i => holders[i % holders.Length]).Select(h => (h.user.Token, h.turn)).ToList());
        var opened = Stopwatch.GetElapsedTime(opening);

        // Let every stream pass its first keep-alive, then count what arrives in the window.
        await Task.Delay(_options.KeepAlive + TimeSpan.FromMilliseconds(500));
        var beatsBefore = streams.Heartbeats();
        var cpuBefore = (Api: system.Api.CpuTime(), Gateway: system.Gateway.CpuTime());
        var window = Stopwatch.GetTimestamp();
        await Task.Delay(_options.IdleWindow);
        var seconds = Stopwatch.GetElapsedTime(window).TotalSeconds;
        var beats = streams.Heartbeats().Zip(beatsBefore, (after, before) => after - before).Order().ToArray();
        var cpu = (Api: system.Api.CpuTime() - cpuBefore.Api, Gateway: system.Gateway.CpuTime() - cpuBefore.Gateway);
        var memoryWith = system.Api.ResidentBytes() + system.Gateway.ResidentBytes();
        var open = streams.OpenCount;

        await _http.PostAsync(new Uri(_stub.Address, "/release"), null);
        var completed = await streams.WaitForEndsAsync(TimeSpan.FromMinutes(2));

        const double mb = 1024 * 1024;
        var notes = string.Create(CultureInfo.InvariantCulture,
            $"RSS API + gateway {memoryBefore / mb:#,0} MB before, {memoryWith / mb:#,0} MB with the streams (+{(memoryWith - memoryBefore) / mb:#,0} MB, {(memoryWith - memoryBefore) / 1024.0 / count:0.0} KB/stream); "
            + $"heartbeats every {_options.KeepAlive.TotalSeconds:0.#} s: {beats.Count(b => b >= 1):#,0} of {beats.Length:#,0} streams got one in {seconds:0.0} s (median {beats[beats.Length / 2]}, min {beats[0]}); "
            + $"{open:#,0} still open at the end of the window; idle CPU API {cpu.Api.TotalSeconds / seconds * 100:0}% + gateway {cpu.Gateway.TotalSeconds / seconds * 100:0}% of one core; "
            + $"all opened in {opened.TotalSeconds:0.0} s; {completed:#,0} got turn.completed once the model spoke again");
        _table.Add(new Row("e1", $"{count:#,0} idle SSE streams through the gateway (turn followers of {_options.IdleTurns} quiet turns)",
            count.ToString("#,0", CultureInfo.InvariantCulture), Notes: notes));
    }

    private string Describe(string? postgresMissing, ServiceProcess? nginx) =>
        string.Join(" ", new[]
        {
            "API and gateway (YARP) are separate `dotnet` processes on loopback (Release when run with -c Release); the stub LLM and the floor relay share a third;",
            nginx is null ? "" : "nginx runs with one worker per core, SSE-safe (no buffering);",
            "\"CPU ms each\" is each process's user + system CPU time (kernel figures, Process.TotalProcessorTime) over the measured turns ÷ turns;",
            "the load generator (this process) shares the same cores and is not counted.",
            $"Every path first runs untimed turns ({_options.SystemWarmupTurns * 4} at 1 user, {_options.SystemWarmupTurns} per user at {_options.Users}), then each load its own warm-up;",
            $"each user's turns rotate over fresh conversations every {_options.TurnsPerConversation} turns, so a turn's history is short;",
            "the stub's prompt tokens are counted with the o200k tokenizer.",
            postgresMissing is null ? $"Postgres: {_postgres!.Version}, a throwaway database." : $"Postgres: not available ({postgresMissing}); parts b and g2 skipped.",
        }.Where(part => part.Length > 0));

    private string Header()
    {
        var os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?[12..].Trim('"')
            : null;
        return $"AiChat benchmark — {Environment.ProcessorCount} cores, {os ?? RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture}), .NET {Environment.Version}, "
            + $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, commit {Commit()}, {Builds.Configuration}"
            + (_options.Smoke ? " — SMOKE MODE: tiny sizes, the figures mean nothing" : "");
    }

    internal static string Commit()
    {
        static string? Git(params string[] arguments)
        {
            try
            {
                using var git = Process.Start(new ProcessStartInfo("git", ["-C", Builds.Root, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
                var output = git.StandardOutput.ReadToEnd().Trim();
                git.WaitForExit(10_000);
                return git.ExitCode == 0 ? output : null;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return null;
            }
        }

        var head = Git("rev-parse", "--short", "HEAD");
        return head is null ? "unknown" : Git("status", "--porcelain") is { Length: > 0 } ? head + " + uncommitted changes" : head;
    }

    private T Own<T>(T resource) where T : IAsyncDisposable
    {
        _owned.Add(resource);
        return resource;
    }
}

/// <summary>A throwaway database on the Postgres server of an admin connection string, dropped at the end of the run.</summary>
public sealed class PostgresDatabase
{
    private readonly string _admin;
    private readonly string _name;

    private PostgresDatabase(string admin, string name, string connectionString, string version)
    {
        _admin = admin;
        _name = name;
        ConnectionString = connectionString;
        Version = version;
    }

    public string ConnectionString { get; }

    public string Version { get; }

    /// <summary>The database, or why there is none (then part b is skipped and the table says so).</summary>
    public static async Task<(PostgresDatabase? Database, string? Missing)> CreateAsync(string? admin)
    {
        if (string.IsNullOrWhiteSpace(admin))
        {
            return (null, $"set {BenchmarkOptions.PostgresVariable} or AICHAT_TEST_POSTGRES to an admin connection string");
        }

        var name = $"aichat_bench_{Guid.NewGuid():N}";
        try
        {
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await using (var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection))
            {
                await create.ExecuteNonQueryAsync();
            }

            await using var version = new NpgsqlCommand("SHOW server_version", connection);
            var builder = new NpgsqlConnectionStringBuilder(admin) { Database = name };
            return (new PostgresDatabase(admin, name, builder.ToString(), $"PostgreSQL {await version.ExecuteScalarAsync()}"), null);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or ArgumentException)
        {
            return (null, $"Postgres did not answer: {ex.Message}");
        }
    }

    public async Task DropAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
