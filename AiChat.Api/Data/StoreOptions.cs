namespace AiChat.Api.Data;

public enum StoreProvider
{
    Sqlite,
    Postgres,
}

/// <summary>Where the store lives: Postgres when <c>ConnectionStrings:aichatdb</c> is set, else a SQLite file.</summary>
public sealed class StoreOptions
{
    public const string Section = "Store";

    /// <summary>Forces a provider; by default Postgres when a connection string is present.</summary>
    public StoreProvider? Provider { get; set; }

    /// <summary>Folder of the SQLite file, relative to the content root unless rooted.</summary>
    public string DataDirectory { get; set; } = "App_Data";

    public string SqliteFileName { get; set; } = "aichat.db";

    /// <summary>
    /// SQLite's <c>synchronous</c> setting in WAL mode: <c>NORMAL</c> (a commit survives a process crash, a power cut can
    /// lose the last ones) or <c>FULL</c> (an fsync per commit: survives a power cut, several times slower per turn).
    /// </summary>
    public string SqliteSynchronous { get; set; } = "NORMAL";

    /// <summary>How long a migrating instance waits for another one to finish.</summary>
    public TimeSpan MigrationLockTimeout { get; set; } = TimeSpan.FromMinutes(2);
}
