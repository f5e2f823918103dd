using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>
/// Follows a turn: its events from a position (what is stored after it, then live until the turn ends), or just its end.
/// Woken by <see cref="TurnHub"/> for turns run here, and polling the store for turns run by other instances.
/// </summary>
public sealed class TurnFollower(TurnStore store, TurnHub hub, IOptions<ChatOptions> options, TimeProvider time)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    public async Task FollowAsync(TurnRecord turn, int afterSeq, Func<StoredEvent, Task> onEvent, Func<Task> onQuiet, CancellationToken cancellationToken)
    {
        var last = afterSeq;
        var lastSent = time.GetUtcNow();
        while (!cancellationToken.IsCancellationRequested)
        {
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

            var current = await store.FindAsync(turn.Id, turn.UserId, cancellationToken);
            if (current is null || (current.IsFinished && last >= current.LastEventSeq))
            {
                return; // nothing more will come
            }

            var quietFor = time.GetUtcNow() - lastSent;
            var untilKeepAlive = options.Value.KeepAliveInterval - quietFor;
            if (untilKeepAlive <= TimeSpan.Zero)
            {
                await onQuiet();
                lastSent = time.GetUtcNow();
                continue;
            }

            await Task.WhenAny(signal, Task.Delay(untilKeepAlive < PollInterval ? untilKeepAlive : PollInterval, time, cancellationToken));
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
            var row = await store.FindResultAsync(turn.Id, turn.UserId, cancellationToken);
            if (row is null || row.Turn.IsFinished)
            {
                return row;
            }

            await Task.Delay(PollInterval, time, cancellationToken);
        }
    }
}
