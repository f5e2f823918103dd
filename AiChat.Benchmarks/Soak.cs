using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text;

namespace AiChat.Benchmarks;

/// <summary>
/// The soak: the benchmark's system (API and gateway processes on one store) under a mixed load of many users for a
/// while, its stub LLM failing one call in twenty, then — once the load has stopped and every turn has ended — the
/// checks that nothing was lost, the ledger balances, nothing is left held or running, and memory stayed bounded.
/// Prints a Markdown summary; exits non-zero when a check fails.
/// </summary>
public static class Soak
{
    public const string Command = "soak";
    public const string Passed = "SOAK PASSED";
    public const string Failed = "SOAK FAILED";

    public static async Task<int> RunAsync(SoakOptions options, TextWriter output)
    {
        FileLimits.Raise(65_536);
        var work = Path.Combine(Path.GetTempPath(), $"aichat-soak-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        var summary = new StringBuilder();
        var passed = false;
        PostgresDatabase? postgres = null;
        try
        {
            string? connectionString = null;
            if (options.Store == "postgres")
            {
                (postgres, var missing) = await PostgresDatabase.CreateAsync(options.PostgresAdmin);
                connectionString = postgres?.ConnectionString ?? throw new InvalidOperationException($"No Postgres for the soak: {missing}");
            }

            var stubPort = ServiceProcess.FreePort();
            await using var stub = await ServiceProcess.StartAsync("stub", "dotnet", [Builds.Benchmark, StubServer.Role, stubPort.ToString(CultureInfo.InvariantCulture), StubServer.FaultsFlag],
                new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" }, new Uri($"http://127.0.0.1:{stubPort}/"), "/health", work);
            await using var system = await MeasuredSystem.StartAsync(options.Store, connectionString, stub.Address, new BenchmarkOptions(), work);
            passed = await RunAsync(options, system, stub, summary);
        }
        catch (Exception ex)
        {
            summary.AppendLine().AppendLine($"**The soak could not run:** {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            if (postgres is not null)
            {
                await postgres.DropAsync();
            }

            if (options.KeepLogs)
            {
                summary.AppendLine().AppendLine($"Logs of every process: {work}");
            }
            else
            {
                try
                {
                    Directory.Delete(work, recursive: true);
                }
                catch (IOException)
                {
                    // A process may still hold a log file for a moment; the temp folder is the operating system's to clean.
                }
            }
        }

        summary.AppendLine().AppendLine(passed ? Passed : Failed);
        await output.WriteAsync(summary.ToString());
        await output.FlushAsync();
        return passed ? 0 : 1;
    }

    private static async Task<bool> RunAsync(SoakOptions options, MeasuredSystem system, ServiceProcess stub, StringBuilder summary)
    {
        using var http = Http.NewClient();
        var record = new SoakRecord();
        var users = new List<SoakUser>();
        for (var i = 1; i <= options.Users; i++)
        {
            users.Add(new SoakUser(i, await Http.RegisterAsync(http, system.Gateway.Address), system.Gateway.Address, http, record));
        }

        var memory = new PeakMemory(system.Api, system.Gateway);
        using var stop = new CancellationTokenSource();
        var started = Stopwatch.GetTimestamp();
        var sampling = memory.SampleAsync(stop.Token);
        var load = Task.WhenAll(users.Select(user => Task.Run(() => user.RunAsync(stop.Token))));
        await Task.Delay(options.Duration);
        while (Stopwatch.GetElapsedTime(started) < options.Duration + options.MaxExtension && (await FaultsAsync(http, stub)).Calls < options.MinLlmCalls)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }

        await stop.CancelAsync();
        await load;
        var ran = Stopwatch.GetElapsedTime(started);
        await sampling;

        var audit = new SoakAudit(system, http);
        var running = await audit.RunningTurnsAsync(options.DrainDeadline);
        memory.Sample();
        var faults = await FaultsAsync(http, stub);
        var injected = faults.Injected.Values.Sum();
        SoakCheck[] checks =
        [
            await audit.LostMessagesAsync(record, users),
            await audit.LedgerAsync(users),
            await audit.ReservationsAsync(),
            running,
            memory.Check(options),
            new(SoakCheck.ExpectedAnswers, record.Unexpected.IsEmpty,
                record.Unexpected.IsEmpty ? "every answer a 2xx or a refusal the request could earn; every stream's ids in sequence, ending in turn.completed or turn.failed"
                    : Invariant($"{record.Unexpected.Count} unexpected: {string.Join("; ", record.Unexpected.Take(5))}")),
            new(SoakCheck.FaultsInjected, injected > 0 && injected == faults.Calls / StubServer.FaultEvery,
                Invariant($"{injected} of {faults.Calls:#,0} LLM calls ({(faults.Calls == 0 ? 0 : 100.0 * injected / faults.Calls):0.0} %), one call in {StubServer.FaultEvery}")),
        ];

        summary.AppendLine(Invariant($"AiChat soak — {system.Store}, {ran.TotalSeconds:0} s, {options.Users} users, {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, commit {Benchmark.Commit()}, {Builds.Configuration}"));
        AppendRequests(summary, record, ran);
        summary.AppendLine().AppendLine("| fault injected by the stub LLM | count |").AppendLine("|---|---:|");
        foreach (var kind in StubFaults.Kinds)
        {
            summary.AppendLine(Invariant($"| {kind} | {faults.Injected.GetValueOrDefault(kind)} |"));
        }

        summary.AppendLine(Invariant($"| all (of {faults.Calls:#,0} LLM calls) | {injected} |"));
        summary.AppendLine().AppendLine("| turn outcome, as its client saw it | turns |").AppendLine("|---|---:|");
        foreach (var (outcome, count) in record.Outcomes.OrderByDescending(o => o.Value).ThenBy(o => o.Key, StringComparer.Ordinal))
        {
            summary.AppendLine(Invariant($"| {outcome} | {count:#,0} |"));
        }

        summary.AppendLine().AppendLine("| check | result | detail |").AppendLine("|---|---|---|");
        foreach (var check in checks)
        {
            summary.AppendLine($"| {check.Name} | {(check.Passed ? "pass" : "FAIL")} | {check.Detail.Replace("|", "/", StringComparison.Ordinal)} |");
        }

        return checks.All(c => c.Passed);
    }

    private static async Task<StubFaultCounts> FaultsAsync(HttpClient http, ServiceProcess stub) =>
        await http.GetFromJsonAsync<StubFaultCounts>(new Uri(stub.Address, "/faults")) ?? throw new InvalidOperationException("The stub did not count its faults.");

    private static void AppendRequests(StringBuilder summary, SoakRecord record, TimeSpan ran)
    {
        summary.AppendLine().AppendLine("| request | count | per s | answers |").AppendLine("|---|---:|---:|---|");
        foreach (var kind in record.Answers.Keys.Select(k => k.Kind).Distinct().OrderBy(k => Array.IndexOf(SoakUser.Kinds, k.Split(':')[0])).ThenBy(k => k, StringComparer.Ordinal))
        {
            var answers = record.Answers.Where(a => a.Key.Kind == kind).OrderByDescending(a => a.Value).ToList();
            var count = answers.Sum(a => a.Value);
            summary.AppendLine(Invariant($"| {kind} | {count:#,0} | {count / ran.TotalSeconds:0.0} | {string.Join(", ", answers.Select(a => $"{a.Key.Answer} ×{a.Value:#,0}"))} |"));
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>The highest resident memory of the API and the gateway, sampled every second while the load runs.</summary>
    private sealed class PeakMemory(ServiceProcess api, ServiceProcess gateway)
    {
        private const double Mb = 1024 * 1024;
        private long _api;
        private long _gateway;
        private long _apiFirst;
        private long _gatewayFirst;

        public async Task SampleAsync(CancellationToken stop)
        {
            Sample();
            (_apiFirst, _gatewayFirst) = (_api, _gateway);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                while (await timer.WaitForNextTickAsync(stop))
                {
                    Sample();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        public void Sample()
        {
            _api = Math.Max(_api, api.ResidentBytes());
            _gateway = Math.Max(_gateway, gateway.ResidentBytes());
        }

        public SoakCheck Check(SoakOptions options) => new(SoakCheck.ResidentMemory,
            _api <= options.ApiMemoryBoundBytes && _gateway <= options.GatewayMemoryBoundBytes,
            Invariant($"peak RSS API {_api / Mb:0} MB (bound {options.ApiMemoryBoundBytes / Mb:0}, {_apiFirst / Mb:0} at the start), gateway {_gateway / Mb:0} MB (bound {options.GatewayMemoryBoundBytes / Mb:0}, {_gatewayFirst / Mb:0} at the start)"));
    }
}
