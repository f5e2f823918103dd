using System.Collections.Concurrent;
using AiChat.Api.Data;

namespace AiChat.Api.Chat;

/// <summary>
/// Wakes the streams that follow a turn when new events are recorded for it — by this instance, or by another one that
/// shares the Postgres store (its writes signal the turn's id through <see cref="StoreSignals"/>) — and the JSON answers
/// that wait for a turn run here to end. The store stays the source of truth: a follower re-reads it after every
/// wake-up, and polls it at a low rate for turns run elsewhere in case a signal is lost.
/// </summary>
public sealed class TurnHub
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _signals = new();
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _ends = new();

    public TurnHub(StoreSignals signals)
    {
        signals.Signalled += payload =>
        {
            if (Guid.TryParse(payload, out var turnId))
            {
                Notify(turnId);
            }
        };
    }

    /// <summary>A task that completes at the next <see cref="Notify"/> for the turn; take it before reading the store.</summary>
    public Task NextAsync(Guid turnId) =>
        _signals.GetOrAdd(turnId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Notify(Guid turnId)
    {
        if (_signals.TryRemove(turnId, out var signal))
        {
            signal.TrySetResult();
        }
    }

    /// <summary>Starts watching a turn this instance is about to run, so <see cref="EndOf"/> can tell when it has ended.</summary>
    public void Track(Guid turnId) => _ends.TryAdd(turnId, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Completes when a tracked turn has ended (its end is stored); null for a turn not run here.</summary>
    public Task? EndOf(Guid turnId) => _ends.TryGetValue(turnId, out var end) ? end.Task : null;

    public void End(Guid turnId)
    {
        Notify(turnId);
        if (_ends.TryRemove(turnId, out var end))
        {
            end.TrySetResult();
        }
    }
}
