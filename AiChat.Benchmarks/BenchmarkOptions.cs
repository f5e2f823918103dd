using System.Globalization;

namespace AiChat.Benchmarks;

/// <summary>What one run measures and how much of it: the full sizes, or the smoke mode's tiny ones (seconds, for CI).</summary>
public sealed record BenchmarkOptions
{
    /// <summary>An admin connection string; the run creates and drops a database of its own on that server.</summary>
    public const string PostgresVariable = "AICHAT_BENCH_POSTGRES";

    public bool Smoke { get; init; }

    /// <summary>Users at once in the concurrent rows (each a registered user with conversations of its own).</summary>
    public int Users { get; init; } = 16;

    public int SingleUserTurns { get; init; } = 500;

    public int TurnsPerUser { get; init; } = 100;

    public int WarmupTurns { get; init; } = 30;

    /// <summary>Untimed turns on every path before anything is measured (JIT tiering, pools, caches), per user at N users.</summary>
    public int SystemWarmupTurns { get; init; } = 30;

    /// <summary>The parts to run (letters a–g; d runs with a); the others are listed as not run.</summary>
    public string Parts { get; init; } = "abcdefg";

    public bool Runs(char part) => Parts.Contains(part, StringComparison.Ordinal);

    /// <summary>Turns per conversation before the next one is used, so every measured turn has a short history.</summary>
    public int TurnsPerConversation { get; init; } = 10;

    public int[] HistorySizes { get; init; } = [10, 10_000, 100_000];

    public int HistoryTurns { get; init; } = 20;

    public int PageRuns { get; init; } = 200;

    public int StatusRuns { get; init; } = 50;

    public int LedgerRuns { get; init; } = 1_000;

    public int IdleStreams { get; init; } = 10_000;

    /// <summary>Quiet turns the idle streams follow (streams are spread evenly over them).</summary>
    public int IdleTurns { get; init; } = 50;

    /// <summary><c>Chat:KeepAliveInterval</c> for the run, shorter than the default so heartbeats arrive while measured.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long heartbeats are counted once every idle stream is open.</summary>
    public TimeSpan IdleWindow { get; init; } = TimeSpan.FromSeconds(10);

    public bool Nginx { get; init; } = true;

    /// <summary>Keeps the run's folder (every process's log, the nginx configuration) and names it under the table.</summary>
    public bool KeepLogs { get; init; }

    public string? PostgresAdmin { get; init; } =
        Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } bench ? bench : Environment.GetEnvironmentVariable("AICHAT_TEST_POSTGRES");

    /// <summary>Extra API settings (<c>--api-setting Chat:Workers=8</c>), e.g. to measure a setting's before and after.</summary>
    public IReadOnlyDictionary<string, string> ApiSettings { get; init; } = new Dictionary<string, string>();

    public static BenchmarkOptions Smoked() => new()
    {
        Smoke = true,
        Users = 4,
        SingleUserTurns = 100, // enough for the stub's CPU to pass a 10 ms kernel tick
        TurnsPerUser = 5,
        WarmupTurns = 2,
        SystemWarmupTurns = 2,
        HistorySizes = [10, 200, 2_000],
        HistoryTurns = 3,
        PageRuns = 10,
        StatusRuns = 5,
        LedgerRuns = 20,
        IdleStreams = 20,
        IdleTurns = 2,
        KeepAlive = TimeSpan.FromSeconds(1),
        IdleWindow = TimeSpan.FromSeconds(2.5),
        Nginx = false,
    };

    public static BenchmarkOptions Parse(string[] args)
    {
        var options = args.Contains("--smoke") ? Smoked() : new BenchmarkOptions();
        var settings = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--smoke":
                    break;
                case "--keep-logs":
                    options = options with { KeepLogs = true };
                    break;
                case "--no-nginx":
                    options = options with { Nginx = false };
                    break;
                case "--parts" when i + 1 < args.Length && args[i + 1].All(c => c is >= 'a' and <= 'g'):
                    options = options with { Parts = args[++i] };
                    break;
                case "--users":
                    options = options with { Users = Number(args, ++i) };
                    break;
                case "--idle-streams":
                    options = options with { IdleStreams = Number(args, ++i) };
                    break;
                case "--api-setting" when i + 1 < args.Length && args[i + 1].Split('=', 2) is [var key, var value]:
                    settings[key] = value;
                    i++;
                    break;
                default:
                    throw new ArgumentException($"Unknown argument '{args[i]}'. Use --smoke, --no-nginx, --keep-logs, --parts abcdefg, --users N, --idle-streams N, --api-setting Key=Value.");
            }
        }

        return options with { ApiSettings = settings };
    }

    private static int Number(string[] args, int i) =>
        i < args.Length && int.TryParse(args[i], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"{args[i - 1]} takes a positive number.");
}
