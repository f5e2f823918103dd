using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace AiChat.Api.Chat;

/// <summary>How asking for a turn came out: a closed set, which the endpoint maps onto its answers.</summary>
public abstract record TurnStart
{
    /// <summary>A new turn was stored and queued.</summary>
    public sealed record Started(TurnRecord Turn) : TurnStart;

    /// <summary>The same Idempotency-Key and message were sent before: this is that turn.</summary>
    public sealed record Existing(TurnRecord Turn) : TurnStart;

    /// <summary>The agent has a running turn; nothing was stored.</summary>
    public sealed record Busy : TurnStart;

    /// <summary>Too many turns wait for a worker; nothing was stored.</summary>
    public sealed record QueueFull : TurnStart;

    /// <summary>The Idempotency-Key was used for a different message.</summary>
    public sealed record KeyReused : TurnStart;
}

/// <summary>
/// Starts turns: the same Idempotency-Key attaches to the same turn, a place in the queue is taken before anything is
/// stored, the turn with the user's message is stored in one transaction, then queued with the trace context of the
/// request that asked for it.
/// </summary>
public sealed class TurnService(TurnStore store, TurnQueue queue, TurnHub hub, TimeProvider time)
{
    public async Task<TurnStart> StartAsync(Guid userId, string content, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));
        if (idempotencyKey is not null && await store.FindByIdempotencyKeyAsync(userId, idempotencyKey, cancellationToken) is { } earlier)
        {
            return Attach(earlier, hash);
        }

        if (!queue.TryReserve())
        {
            return new TurnStart.QueueFull();
        }

        var turn = new TurnRecord
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            Status = TurnStatus.Running,
            IdempotencyKey = idempotencyKey,
            RequestHash = hash,
            UserMessageId = Guid.CreateVersion7(),
            AssistantMessageId = Guid.CreateVersion7(),
            CreatedAt = Microseconds(time.GetUtcNow()),
            LastEventSeq = 1,
        };
        var started = TurnEvents.Create(1, TurnEvents.Started, new TurnStartedData(turn.Id, turn.UserMessageId, turn.AssistantMessageId));
        TurnRecord? created;
        try
        {
            created = await store.CreateAsync(turn, content, started, cancellationToken);
        }
        catch (TurnConflictException)
        {
            queue.Unreserve();
            return new TurnStart.Busy();
        }
        catch
        {
            queue.Unreserve();
            throw;
        }

        if (created is null)
        {
            // Another request with the same key stored its turn first: attach to that one.
            queue.Unreserve();
            var winner = await store.FindByIdempotencyKeyAsync(userId, idempotencyKey!, cancellationToken);
            return winner is null ? new TurnStart.KeyReused() : Attach(winner, hash);
        }

        hub.Track(created.Id);
        try
        {
            queue.Enqueue(new TurnWork(created, content, Activity.Current?.Context ?? default));
        }
        catch
        {
            hub.End(created.Id); // never queued: recovery closes the stored turn once its heartbeat is stale
            throw;
        }

        return new TurnStart.Started(created);
    }

    private static TurnStart Attach(TurnRecord earlier, string hash) =>
        earlier.RequestHash == hash ? new TurnStart.Existing(earlier) : new TurnStart.KeyReused();

    // Both stores keep microseconds; the events then carry the same instants as the history.
    private static DateTimeOffset Microseconds(DateTimeOffset instant) => new(instant.UtcTicks - instant.UtcTicks % 10, TimeSpan.Zero);
}
