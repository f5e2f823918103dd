using Npgsql;

namespace AiChat.Api.Data;

/// <summary>
/// Wake-ups between API instances that share one Postgres: a write adds <see cref="SignalSql"/> to its batch (Postgres
/// delivers the <c>NOTIFY</c> when the write commits), and every instance's listener, one connection that
/// <c>LISTEN</c>s, raises <see cref="Signalled"/> with the payload. On SQLite (one instance per file) there is nothing to
/// listen to. While the listener is down (<see cref="IsListening"/> false) readers fall back to polling; it reconnects
/// by itself. The payload is whatever the writer names (a feature's id); this class knows no feature.
/// </summary>
public sealed partial class StoreSignals(AiChatDb db, ILogger<StoreSignals> logger) : BackgroundService
{
    public const string Channel = "aichat_signals";

    private static readonly TimeSpan Reconnect = TimeSpan.FromSeconds(2);

    private volatile bool _listening;

    /// <summary>Raised on the listener's thread for each signal from any instance (this one's included); keep it quick.</summary>
    public event Action<string>? Signalled;

    /// <summary>Whether signals from other instances arrive now (always false on SQLite, where there are no others).</summary>
    public bool IsListening => _listening;

    /// <summary>The statement that signals <paramref name="payloadParameter"/> (a parameter name such as <c>@turnId</c>) at commit; empty on SQLite.</summary>
    public static string SignalSql(StoreProvider provider, string payloadParameter) =>
        provider == StoreProvider.Postgres ? $"SELECT pg_notify('{Channel}', CAST({payloadParameter} AS text));\n" : "";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (db.Provider != StoreProvider.Postgres)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(db.MigrationConnectionString);
                connection.Notification += (_, notification) => Signalled?.Invoke(notification.Payload);
                await connection.OpenAsync(stoppingToken);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                _listening = true;
                LogListening(logger);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                LogListenerLost(logger, ex, Reconnect.TotalSeconds);
            }
            finally
            {
                _listening = false;
            }

            await Task.Delay(Reconnect, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Listening for store signals")]
    private static partial void LogListening(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store signal listener lost its connection; readers poll until it reconnects in {Seconds} s")]
    private static partial void LogListenerLost(ILogger logger, Exception exception, double seconds);
}
