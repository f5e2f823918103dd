using System.Collections.Concurrent;

namespace AiChat.Api.Chat;

/// <summary>
/// Wakes the streams that follow a turn when this instance records new events for it. The store stays the source of
/// truth: a follower re-reads it after every wake-up, and polls it anyway, which also covers turns run by other instances.
/// </summary>
public sealed class TurnHub
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _signals = new();

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
}
