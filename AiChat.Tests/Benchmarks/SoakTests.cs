using System.Globalization;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Benchmarks;

/// <summary>
/// The soak as the command a person runs, for 30 seconds on each store (longer on a busy machine, until it has made
/// <see cref="MinLlmCalls"/> LLM calls): the mixed load with the stub LLM's faults must end with every check passed
/// (exit code 0, and each check's row in the summary says so), every kind of request and of fault must have happened,
/// and the faults must be exactly one LLM call in twenty.
/// </summary>
[Trait("Category", "Benchmark")]
public sealed class SoakTests(PostgresServer postgres)
{
    private static readonly string[] Checks =
        ["zero lost messages", "balanced ledger", "no reservation left", "no running turn left", "resident memory", "expected answers, well-formed streams", "faults injected"];

    private static readonly string[] Requests =
        ["chat turn (SSE)", "chat turn resumed (Last-Event-ID)", "chat turn cancelled", "chat turn abandoned by its client", "history page", "memory edit", "memory read", "search", "conversation create", "conversation rename"];

    private static readonly string[] Faults = ["http_500", "http_429", "disconnect_mid_stream", "malformed_chunk", "slow_response"];

    // Enough calls for one fault of each kind (calls 20, 40, … 100); a busy machine runs past 30 s to reach them.
    private const int MinLlmCalls = 100;

    public static TheoryData<string> Stores => new("sqlite", "postgres");

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task AThirtySecondSoakWithFaultsPassesEveryCheck(string store)
    {
        if (store == "postgres" && (postgres.AdminConnectionString is null || postgres.Unavailable is not null))
        {
            Prerequisite.Missing($"Postgres for the soak ({postgres.Unavailable ?? "not configured"})");
        }

        var (exitCode, output) = await RunSoakAsync(store, postgres.AdminConnectionString);

        var tables = Tables(output);
        Assert.True(tables.ContainsKey("check"), $"no checks in the summary:\n{output}");
        Assert.Equal(Checks, tables["check"].Keys);
        Assert.All(tables["check"], row => Assert.True(row.Value[0] == "pass", $"{row.Key}: {string.Join(" | ", row.Value)}\n{output}"));
        Assert.True(exitCode == 0, $"the soak exited with {exitCode}:\n{output}");
        Assert.EndsWith("SOAK PASSED", output.TrimEnd());

        // The load had every kind of request, every kind of fault, and both ends of a turn.
        Assert.All(Requests, kind => Assert.True(Count(tables["request"][kind][0]) > 0, $"no '{kind}' requests:\n{output}"));
        Assert.All(Faults, kind => Assert.True(Count(tables["fault injected by the stub LLM"][kind][0]) > 0, $"no '{kind}' fault:\n{output}"));
        var calls = Count(tables["fault injected by the stub LLM"].Keys.Single(k => k.StartsWith("all (of ", StringComparison.Ordinal))["all (of ".Length..].Split(' ')[0]);
        Assert.True(calls >= MinLlmCalls, $"{calls} LLM calls:\n{output}");
        Assert.Equal(calls / 20, Faults.Sum(kind => Count(tables["fault injected by the stub LLM"][kind][0])));
        var outcomes = tables["turn outcome, as its client saw it"];
        Assert.True(Count(outcomes["completed"][0]) > 0, output);
        Assert.True(Count(outcomes["failed: cancelled"][0]) > 0, output);
        Assert.Contains(outcomes.Keys, k => k.StartsWith("failed: llm_", StringComparison.Ordinal));
    }

    private static long Count(string cell) => long.Parse(cell.Replace(",", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>The summary's Markdown tables by the first header cell: rows by their first cell, with the other cells.</summary>
    private static Dictionary<string, Dictionary<string, string[]>> Tables(string output)
    {
        var tables = new Dictionary<string, Dictionary<string, string[]>>();
        Dictionary<string, string[]>? current = null;
        foreach (var line in output.Split('\n', StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith('|'))
            {
                current = null;
                continue;
            }

            var cells = line.Trim('|').Split(" | ").Select(cell => cell.Trim()).ToArray();
            if (current is null)
            {
                tables[cells[0]] = current = [];
            }
            else if (!cells[0].StartsWith("---", StringComparison.Ordinal))
            {
                current[cells[0]] = cells[1..];
            }
        }

        return tables;
    }

    private static Task<(int ExitCode, string Output)> RunSoakAsync(string store, string? postgresAdmin) =>
        BenchmarkCommand.RunAsync(["soak", "--seconds", "30", "--min-llm-calls", MinLlmCalls.ToString(CultureInfo.InvariantCulture), "--store", store], postgresAdmin, TimeSpan.FromSeconds(300));
}
