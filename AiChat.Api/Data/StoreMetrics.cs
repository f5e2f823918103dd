using System.Diagnostics.Metrics;

namespace AiChat.Api.Data;

/// <summary>
/// The store's round trips as metrics (meter <c>AiChat.Store</c>): connections opened and commands executed, tagged
/// with the database system and the <see cref="AiChatDb"/> they came from.
/// </summary>
internal sealed class StoreMetrics
{
    public const string MeterName = "AiChat.Store";
    public const string ConnectionsName = "aichat.store.connections";
    public const string CommandsName = "aichat.store.commands";
    public const string InstanceTag = "aichat.store.instance";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Counter<long> s_connections = s_meter.CreateCounter<long>(ConnectionsName, "{connection}", "Connections opened from the store.");
    private static readonly Counter<long> s_commands = s_meter.CreateCounter<long>(CommandsName, "{command}", "Commands (statements or batches) executed on the store's connections.");

    private readonly KeyValuePair<string, object?> _system;
    private readonly KeyValuePair<string, object?> _instance;

    public StoreMetrics(StoreProvider provider)
    {
        Instance = Guid.NewGuid().ToString("N")[..12];
        _system = new("db.system.name", provider == StoreProvider.Postgres ? "postgresql" : "sqlite");
        _instance = new(InstanceTag, Instance);
    }

    /// <summary>Tells this store's measurements from those of other stores in the same process (tests run many).</summary>
    public string Instance { get; }

    public void ConnectionOpened()
    {
        if (s_connections.Enabled)
        {
            s_connections.Add(1, _system, _instance);
        }
    }

    public void CommandExecuted()
    {
        if (s_commands.Enabled)
        {
            s_commands.Add(1, _system, _instance);
        }
    }
}
