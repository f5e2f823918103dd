using System.Globalization;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Benchmarks;

/// <summary>
/// The benchmark in smoke mode (tiny sizes, seconds), run as the command a person runs: it must finish and print every
/// row with figures, so it keeps working between the full runs, which are not part of CI.
/// </summary>
[Trait("Category", "Benchmark")]
public sealed class BenchmarkSmokeTests(PostgresServer postgres)
{
    // Rows with measured figures in smoke mode; d1-d3 (nginx) are not run there and say so.
    private static readonly string[] Measured = ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3", "b4", "c1", "c2", "c3", "f1", "f2", "f3", "f4", "g1", "g2"];

    [Fact]
    public async Task TheSmokeRunPrintsEveryRowWithFigures()
    {
        if (postgres.AdminConnectionString is null || postgres.Unavailable is not null)
        {
            Prerequisite.Missing($"Postgres for the benchmark's part b ({postgres.Unavailable ?? "not configured"})");
        }

        var (exitCode, output) = await RunSmokeAsync(postgres.AdminConnectionString!);

        Assert.True(exitCode == 0, $"the benchmark exited with {exitCode}:\n{output}");
        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        Assert.StartsWith("AiChat benchmark — ", lines[0]);
        Assert.Contains(" cores, ", lines[0]);
        Assert.Contains("commit ", lines[0]);
        Assert.Contains("SMOKE MODE", lines[0]);
        var rows = lines.Where(line => line.StartsWith("| ", StringComparison.Ordinal) && !line.StartsWith("| id ", StringComparison.Ordinal))
            .Select(line => line.Trim('|').Split(" | ").Select(cell => cell.Trim()).ToArray())
            .ToDictionary(cells => cells[0]);
        Assert.Equal(Measured.Concat(["d1", "d2", "d3", "e1"]).Order(StringComparer.Ordinal), rows.Keys.Order(StringComparer.Ordinal));

        foreach (var id in Measured)
        {
            var cells = rows[id];
            Assert.All(cells[2..7], cell => Assert.True(Positive(cell), $"{id}: '{cell}' is not a positive figure in {string.Join(" | ", cells)}"));
        }

        // Every turn row reports the CPU of the processes on its path (the proxy's only through the gateway), and the
        // API's default levels log nothing per turn. The kernel counts CPU in ticks of 10 ms: over a smoke run's few
        // turns the stub's and the proxy's share may round to 0.00, so theirs must be figures, the API's positive.
        foreach (var id in new[] { "a2", "a3", "a5", "a6", "b1", "b2", "b3", "b4" })
        {
            var cpu = rows[id][7].Split(" · ");
            Assert.True(Positive(cpu[0]) && Figure(cpu[2]), $"{id}: CPU '{rows[id][7]}'");
            Assert.True(id is "a3" or "a6" or "b2" or "b4" ? Figure(cpu[1]) : cpu[1] == "—", $"{id}: CPU '{rows[id][7]}'");
            Assert.Contains("API log entries/turn 0.0", rows[id][8]);
        }

        Assert.All(new[] { "d1", "d2", "d3" }, id => Assert.Contains("not run: smoke mode", rows[id][8]));
        Assert.Equal("20", rows["e1"][2]);
        Assert.Contains("20 of 20 streams got one", rows["e1"][8]);
        Assert.Contains("20 got turn.completed", rows["e1"][8]);
        Assert.Contains("prompt tokens/turn", rows["c3"][8]);
    }

    private static bool Figure(string cell) =>
        double.TryParse(cell.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= 0;

    private static bool Positive(string cell) =>
        double.TryParse(cell.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0;

    private static Task<(int ExitCode, string Output)> RunSmokeAsync(string postgresAdmin) =>
        BenchmarkCommand.RunAsync(["--smoke"], postgresAdmin, TimeSpan.FromSeconds(150));
}
