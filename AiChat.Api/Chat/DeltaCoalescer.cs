using System.Diagnostics;
using System.Runtime.CompilerServices;
using AiChat.Api.Agents;

namespace AiChat.Api.Chat;

/// <summary>
/// Gathers what an agent says within a short window into batches, so a token-by-token stream costs one write per
/// window instead of one per token. A batch goes out when the window since its first event has passed, and at once with
/// the event that ends the turn (the runner writes that batch with the turn's end). A zero window passes every event on alone.
/// </summary>
public static class DeltaCoalescer
{
    public static bool EndsTurn(AgentEvent agentEvent) => agentEvent is AgentEvent.Completed or AgentEvent.Failed or AgentEvent.Cancelled;

    public static async IAsyncEnumerable<IReadOnlyList<AgentEvent>> BatchAsync(
        IAsyncEnumerable<AgentEvent> source, TimeSpan window, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var enumerator = source.GetAsyncEnumerator(cancellationToken);
        var batch = new List<AgentEvent>();
        var since = 0L;
        Task<bool>? next = null;
        while (true)
        {
            next ??= enumerator.MoveNextAsync().AsTask();
            if (batch.Count > 0)
            {
                var remaining = window - Stopwatch.GetElapsedTime(since);
                if (remaining <= TimeSpan.Zero || await Task.WhenAny(next, Task.Delay(remaining, cancellationToken)) != next)
                {
                    yield return batch;
                    batch = [];
                    continue;
                }
            }

            if (!await next)
            {
                break;
            }

            var current = enumerator.Current;
            next = null;
            if (batch.Count == 0)
            {
                since = Stopwatch.GetTimestamp();
            }

            batch.Add(current);
            if (EndsTurn(current))
            {
                yield return batch;
                yield break;
            }
        }

        if (batch.Count > 0)
        {
            yield return batch;
        }
    }
}
