using System.Globalization;

namespace AiChat.Benchmarks;

/// <summary>How long the soak runs, on which store, with how many users, and the resident-memory bounds it checks.</summary>
public sealed record SoakOptions
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary><c>sqlite</c> or <c>postgres</c> (a throwaway database on <see cref="PostgresAdmin"/>'s server).</summary>
    public string Store { get; init; } = "sqlite";

    public int Users { get; init; } = 8;

    /// <summary>
    /// LLM calls the load makes at least: past <see cref="Duration"/> it goes on until the stub has had this many (for at
    /// most <see cref="MaxExtension"/>), so a short run on a busy machine still meets every kind of fault.
    /// </summary>
    public int MinLlmCalls { get; init; }

    public TimeSpan MaxExtension { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long the end waits for every turn to end once the load has stopped.</summary>
    public TimeSpan DrainDeadline { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Peak resident memory the API may reach under the soak (measured: about 320 MB after 2 minutes, from about 140 MB at the start).</summary>
    public long ApiMemoryBoundBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>Peak resident memory the gateway may reach under the soak (measured: about 115 MB).</summary>
    public long GatewayMemoryBoundBytes { get; init; } = 256L * 1024 * 1024;

    public bool KeepLogs { get; init; }

    public string? PostgresAdmin { get; init; } = new BenchmarkOptions().PostgresAdmin;

    public static SoakOptions Parse(string[] args)
    {
        var options = new SoakOptions();
        for (var i = 0; i < args.Length; i++)
        {
            options = args[i] switch
            {
                "--minutes" => options with { Duration = TimeSpan.FromMinutes(Number(args, ++i)) },
                "--seconds" => options with { Duration = TimeSpan.FromSeconds(Number(args, ++i)) },
                "--users" => options with { Users = Number(args, ++i) },
                "--min-llm-calls" => options with { MinLlmCalls = Number(args, ++i) },
                "--store" when i + 1 < args.Length && args[i + 1] is "sqlite" or "postgres" => options with { Store = args[++i] },
                "--keep-logs" => options with { KeepLogs = true },
                _ => throw new ArgumentException($"Unknown soak argument '{args[i]}'. Use --minutes N | --seconds N, --store sqlite|postgres, --users N, --min-llm-calls N, --keep-logs."),
            };
        }

        return options;
    }

    private static int Number(string[] args, int i) =>
        i < args.Length && int.TryParse(args[i], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{args[i - 1]} takes a positive number.");
}
