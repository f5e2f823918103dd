using AiChat.Api.Data;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>
/// Follows a turn: its events from a position (what is stored after it, then live until the turn ends), or just its end.
/// A turn run here wakes its followers through <see cref="TurnHub"/> and is never polled, so thousands of quiet streams
/// cost only their keep-alives; a turn run by another instance wakes them through the store's signals (Postgres
/// <c>LISTEN/NOTIFY</c>), with a slow poll as the fallback (<see cref="ChatOptions.SignalledPollInterval"/>), or is
/// polled every 250 ms while no signals arrive.
/// </summary>
public sealed class TurnFollower(TurnStore store, TurnHub hub, StoreSignals signals, IOptions<ChatOptions> options, TimeProvider time)
{
    /// <summary>How often the store is read for a turn another instance runs while no signal can wake the follower.</summary>
    private static readonly TimeSpan UnsignalledPollInterval = TimeSpan.FromMilliseconds(250);

    private TimeSpan PollInterval => signals.IsListening ? options.Value.SignalledPollInterval : UnsignalledPollInterval;

    public async Task FollowAsync(TurnRecord turn, int afterSeq, Func<StoredEvent, Task> onEvent, Func<Task> onQuiet, CancellationToken cancellationToken)
    {
        var last = afterSeq;
        var lastSent = time.GetUtcNow();
        while (!cancellationToken.IsCancellationRequested)
        {
            // Taken before the read: an event stored after it wakes it, so none is missed between the read and the wait.
            var signal = hub.NextAsync(turn.Id);
            var events = await store.ReadEventsAsync(turn.Id, last, cancellationToken);
            foreach (var stored in events)
            {
                await onEvent(stored);
                last = stored.Seq;
                lastSent = time.GetUtcNow();
                if (TurnEvents.IsTerminal(stored.Event))
                {
                    return;
                }
            }

            if (events.Count > 0)
            {
                continue;
            }

            var runsHere = hub.EndOf(turn.Id) is not null;
            if (!runsHere)
            {
                var current = await store.FindAsync(turn.Id, turn.UserId, cancellationToken);
                if (current is null || (current.IsFinished && last >= current.LastEventSeq))
                {
                    return; // nothing more will come
                }
            }

            // Wait for a wake-up (the turn run here) or the next poll (run elsewhere), with keep-alives while it is quiet.
            var polled = time.GetUtcNow();
            var pollInterval = PollInterval;
            while (!cancellationToken.IsCancellationRequested)
            {
                var untilKeepAlive = options.Value.KeepAliveInterval - (time.GetUtcNow() - lastSent);
                if (untilKeepAlive <= TimeSpan.Zero)
                {
                    await onQuiet();
                    lastSent = time.GetUtcNow();
                    continue;
                }

                var untilPoll = pollInterval - (time.GetUtcNow() - polled);
                if (!runsHere && untilPoll <= TimeSpan.Zero)
                {
                    break;
                }

                var wait = runsHere || untilKeepAlive < untilPoll ? untilKeepAlive : untilPoll;
                if (await Task.WhenAny(signal, Task.Delay(wait, time, cancellationToken)) == signal)
                {
                    break;
                }
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Waits for the turn to end and reads it with its messages, once: a turn run here is awaited, one run elsewhere polled.
    /// Null when the turn is gone (its history was deleted).
    /// </summary>
    public async Task<TurnResultRow?> WaitForEndAsync(TurnRecord turn, CancellationToken cancellationToken)
    {
        if (hub.EndOf(turn.Id) is { } end)
        {
            await end.WaitAsync(cancellationToken);
        }

        while (true)
        {
            var signal = hub.NextAsync(turn.Id);
            var row = await store.FindResultAsync(turn.Id, turn.UserId, cancellationToken);
            if (row is null || row.Turn.IsFinished)
            {
                return row;
            }

            await Task.WhenAny(signal, Task.Delay(PollInterval, time, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}
