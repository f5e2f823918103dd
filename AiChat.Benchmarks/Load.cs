using System.Diagnostics;

namespace AiChat.Benchmarks;

/// <summary>What one measured load produced: every turn's time, the wall time, and the CPU each process spent on it.</summary>
public sealed record LoadResult(double[] Sorted, TimeSpan Wall, IReadOnlyDictionary<string, TimeSpan> Cpu, double LogEntriesPerTurn, double PromptTokensPerTurn, double CallsPerTurn)
{
    public int Count => Sorted.Length;

    public double P50 => Percentile(0.50);

    public double P95 => Percentile(0.95);

    public double P99 => Percentile(0.99);

    public double PerSecond => Count / Wall.TotalSeconds;

    public double CpuMsPerTurn(string process) => Cpu.TryGetValue(process, out var cpu) ? cpu.TotalMilliseconds / Count : double.NaN;

    // Nearest rank: the smallest sample with at least q of all samples at or below it.
    public double Percentile(double q) => Sorted[Math.Clamp((int)Math.Ceiling(q * Count) - 1, 0, Count - 1)];
}

/// <summary>
/// A closed loop per user: every user warms up, then all run their measured turns at once, each starting its next turn
/// when the last one ended. The CPU of the measured processes is read from the kernel just before and just after.
/// </summary>
public static class Load
{
    /// <param name="turn">Runs turn number <c>i</c> (counting the warm-up) of user <c>u</c>.</param>
    public static async Task<LoadResult> RunAsync(
        int users, int turnsPerUser, int warmupPerUser, Func<int, int, Task<TurnOutcome>> turn, IReadOnlyList<ServiceProcess> measured, ServiceProcess? logged = null)
    {
        await Task.WhenAll(Enumerable.Range(0, users).Select(async u =>
        {
            for (var i = 0; i < warmupPerUser; i++)
            {
                await turn(u, i);
            }
        }));

        var outcomes = new TurnOutcome[users * turnsPerUser];
        var cpuBefore = measured.ToDictionary(p => p.Name, p => p.CpuTime());
        var linesBefore = logged?.LogEntries ?? 0;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, users).Select(u => Task.Run(async () =>
        {
            for (var i = 0; i < turnsPerUser; i++)
            {
                outcomes[u * turnsPerUser + i] = await turn(u, warmupPerUser + i);
            }
        })));
        var wall = Stopwatch.GetElapsedTime(started);
        var cpu = measured.ToDictionary(p => p.Name, p => p.CpuTime() - cpuBefore[p.Name]);

        // Console output reaches the pipe a moment after it is written; give the last lines that moment.
        await Task.Delay(logged is null ? 0 : 200);
        var lines = (logged?.LogEntries ?? 0) - linesBefore;
        var sorted = outcomes.Select(o => o.Milliseconds).Order().ToArray();
        return new LoadResult(sorted, wall, cpu, (double)lines / outcomes.Length, outcomes.Average(o => o.PromptTokens), outcomes.Average(o => o.Calls));
    }

    /// <summary>One request after another, timed.</summary>
    public static async Task<LoadResult> SequentialAsync(int runs, int warmup, Func<Task<double>> request, IReadOnlyList<ServiceProcess> measured) =>
        await RunAsync(1, runs, warmup, async (_, _) => new TurnOutcome(await request(), 0, 0), measured);
}
