using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>How asking for a turn came out: a closed set, which the endpoint maps onto its answers.</summary>
public abstract record TurnStart
{
    /// <summary>A new turn was stored and queued.</summary>
    public sealed record Started(TurnRecord Turn) : TurnStart;

    /// <summary>The same Idempotency-Key and message were sent before: this is that turn.</summary>
    public sealed record Existing(TurnRecord Turn) : TurnStart;

    /// <summary>The conversation has a running turn; nothing was stored.</summary>
    public sealed record Busy : TurnStart;

    /// <summary>The user has as many turns running (in other conversations) as they may; nothing was stored.</summary>
    public sealed record TooManyTurns(int Max) : TurnStart;

    /// <summary>The conversation is not the user's (or does not exist); nothing was stored.</summary>
    public sealed record NotFound : TurnStart;

    /// <summary>Too many turns wait for a worker; nothing was stored.</summary>
    public sealed record QueueFull : TurnStart;

    /// <summary>The Idempotency-Key was used for a different message.</summary>
    public sealed record KeyReused : TurnStart;
}

/// <summary>
/// Starts turns: the same Idempotency-Key attaches to the same turn, a place in the queue is taken before anything is
/// stored, the turn with the user's message is stored in one transaction (one running turn per conversation, at most
/// <see cref="ChatOptions.MaxConcurrentTurnsPerUser"/> per user), then queued with the trace context of the request
/// that asked for it.
/// </summary>
public sealed class TurnService(TurnStore store, ConversationStore conversations, TurnQueue queue, TurnHub hub, IOptions<ChatOptions> options, TimeProvider time)
{
    /// <param name="conversationId">The conversation; null for the user's default one (the single-chat endpoints), made if it is missing.</param>
    public async Task<TurnStart> StartAsync(Guid userId, Guid? conversationId, string content, string? idempotencyKey, CancellationToken cancellationToken)
    {
        // A key names one request: the same text sent to another conversation is another request.
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(conversationId is null ? content : $"{conversationId}\n{content}")));
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
        var max = Math.Max(1, options.Value.MaxConcurrentTurnsPerUser);
        TurnRecord? created;
        try
        {
            try
            {
                created = await store.CreateAsync(turn, conversationId, content, started, max, cancellationToken);
            }
            catch (ConversationNotFoundException) when (conversationId is null)
            {
                // The default conversation was deleted: the single-chat endpoints start a new one.
                await conversations.EnsureDefaultAsync(userId, time.GetUtcNow(), cancellationToken);
                created = await store.CreateAsync(turn, conversationId, content, started, max, cancellationToken);
            }
        }
        catch (TurnConflictException)
        {
            queue.Unreserve();
            return new TurnStart.Busy();
        }
        catch (TooManyTurnsException)
        {
            queue.Unreserve();
            return new TurnStart.TooManyTurns(max);
        }
        catch (ConversationNotFoundException)
        {
            queue.Unreserve();
            return new TurnStart.NotFound();
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
