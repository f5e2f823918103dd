namespace AiChat.Api.Chat;

public sealed class ChatOptions
{
    public const string Section = "Chat";

    /// <summary>The longest message a user may send, in characters (413 above it).</summary>
    public int MaxMessageChars { get; set; } = 32_000;

    /// <summary>
    /// Turns this instance runs at once; by default <see cref="WorkersPerCore"/> per core, since a turn spends nearly all
    /// of its time waiting on the model, not computing.
    /// </summary>
    public int Workers { get; set; } = DefaultWorkers(Environment.ProcessorCount);

    /// <summary>Turns that may wait for a worker; beyond it a new message gets 503 with Retry-After and nothing is stored.</summary>
    public int QueueCapacity { get; set; } = DefaultQueueCapacity(Environment.ProcessorCount);

    /// <summary>Workers per core when <c>Chat:Workers</c> is not configured.</summary>
    public const int WorkersPerCore = 32;

    /// <summary>Waiting places per worker when <c>Chat:QueueCapacity</c> is not configured: a short burst waits, a flood is told 503.</summary>
    public const int QueuedPerWorker = 4;

    public static int DefaultWorkers(int cores) => Math.Max(1, cores) * WorkersPerCore;

    public static int DefaultQueueCapacity(int cores) => DefaultWorkers(cores) * QueuedPerWorker;

    /// <summary>Turns one user may have running at once, in different conversations; beyond it 429 <c>too_many_turns</c>.</summary>
    public int MaxConcurrentTurnsPerUser { get; set; } = 2;

    /// <summary>Per-user request rates on this instance (in memory).</summary>
    public ChatRateLimitOptions RateLimits { get; set; } = new();

    /// <summary>
    /// Event streams one user may hold open at once on this instance (a streamed message, a regenerate, a turn's events);
    /// beyond it 429 <c>too_many_streams</c>. Enough for a few tabs following the user's running turns and reconnecting.
    /// </summary>
    public int MaxOpenStreamsPerUser { get; set; } = 8;

    /// <summary>How often a running turn tells the store it is alive.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A running turn whose heartbeat is older than this was lost with its instance and is closed as failed.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often recovery looks for lost turns and purges old events.</summary>
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A comment line goes out at least this often while a stream is quiet.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a finished turn's events can be replayed.</summary>
    public TimeSpan EventRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long shutdown waits for running turns before closing them as failed.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How often a follower reads the store for a turn another instance runs while signals arrive from the other
    /// instances (Postgres <c>LISTEN/NOTIFY</c>): only a fallback for a lost signal. Without signals it polls every 250 ms.
    /// </summary>
    public TimeSpan SignalledPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long deltas are gathered into one stored event (fewer writes, same text).</summary>
    public TimeSpan DeltaCoalescing { get; set; } = TimeSpan.FromMilliseconds(30);
}

public sealed class ChatRateLimitOptions
{
    /// <summary>
    /// Messages (and regenerates) one user may send per minute, across all conversations; beyond it 429 <c>rate_limited</c>
    /// and nothing is stored. Far above what a person types, low enough to stop a runaway script from filling the queue.
    /// </summary>
    public int MessagesPerMinute { get; set; } = 30;
}
