using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>
/// Closes turns lost with the instance that ran them (their heartbeat stopped: a crash, a kill): the user's message stays,
/// the assistant's is marked failed, its conversation (in the same transaction) and its budget holds are released. Runs at start and then periodically; also purges the events of
/// turns finished longer ago than the retention period.
/// </summary>
public sealed partial class TurnRecovery(TurnStore store, Billing.Ledger ledger, TurnHub hub, IOptions<ChatOptions> options, TimeProvider time, ILogger<TurnRecovery> logger)
    : BackgroundService
{
    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var lost = await store.FindLostAsync(now - options.Value.StaleAfter, cancellationToken);
        foreach (var turn in lost)
        {
            var failure = new TurnFailure(StatusCodes.Status503ServiceUnavailable, ChatProblems.TurnLost,
                "The server running this turn stopped before it finished. Send the message again.");
            // Holds first: whoever sees the turn end (its followers) sees the budget whole.
            await ledger.ReleaseTurnAsync(turn.UserId, turn.Id, cancellationToken);
            await store.FinishAsync(turn,
                new TurnEnding(TurnStatus.Failed, failure, "", MessageStatus.Failed, null, null, null, null, [TurnEvents.Problem(turn.LastEventSeq + 1, turn.Id, failure)]),
                now, cancellationToken);
            hub.End(turn.Id);
            LogRecovered(logger, turn.Id);
        }

        await store.PurgeEventsAsync(now - options.Value.EventRetention, cancellationToken);
        return lost.Count;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RecoverAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogRecoveryFailed(logger, ex);
            }

            await Task.Delay(options.Value.RecoveryInterval, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closed lost turn {TurnId} as failed")]
    private static partial void LogRecovered(ILogger logger, Guid turnId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Turn recovery failed")]
    private static partial void LogRecoveryFailed(ILogger logger, Exception exception);
}
