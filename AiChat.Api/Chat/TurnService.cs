using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using AiChat.Api.Agents;
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

    /// <summary>An upstream the user's agent needs has its breaker open for <paramref name="RetryAfterSeconds"/> more; nothing was stored.</summary>
    public sealed record UpstreamUnavailable(int RetryAfterSeconds) : TurnStart;

    /// <summary>Too many turns wait for a worker; nothing was stored.</summary>
    public sealed record QueueFull : TurnStart;

    /// <summary>The Idempotency-Key was used for a different message.</summary>
    public sealed record KeyReused : TurnStart;

    /// <summary>A regenerate named a message that is not in the user's conversation; nothing was stored.</summary>
    public sealed record MessageNotFound : TurnStart;

    /// <summary>A regenerate named a message that is not the conversation's last current answer; nothing was stored.</summary>
    public sealed record NotLastAnswer : TurnStart;

    /// <summary>The agent's runtime cannot answer an earlier message again (Letta); nothing was stored.</summary>
    public sealed record RegenerateUnsupported(string Runtime) : TurnStart;
}

/// <summary>
/// Starts turns, for a new message or a regenerate of the last answer: the same Idempotency-Key attaches to the same
/// turn, a place in the queue is taken before anything is stored, the turn is stored in one transaction (one running
/// turn per conversation, at most <see cref="ChatOptions.MaxConcurrentTurnsPerUser"/> per user), then queued with the
/// trace context of the request that asked for it.
/// </summary>
public sealed class TurnService(
    TurnStore store,
    ConversationStore conversations,
    MessageStore messages,
    AgentService agents,
    TurnQueue queue,
    TurnHub hub,
    IOptions<ChatOptions> options,
    TimeProvider time)
{
    /// <param name="conversationId">The conversation; null for the user's default one (the single-chat endpoints), made if it is missing.</param>
    public Task<TurnStart> StartAsync(Guid userId, Guid? conversationId, string content, string? idempotencyKey, CancellationToken cancellationToken)
    {
        // A key names one request: the same text sent to another conversation is another request.
        var hash = Hash(conversationId is null ? content : $"{conversationId}\n{content}");
        var turn = NewTurn(userId, idempotencyKey, hash, Guid.CreateVersion7());
        return StartAsync(turn, content, async (started, max) =>
        {
            try
            {
                return await store.CreateAsync(turn, conversationId, content, started, max, cancellationToken);
            }
            catch (ConversationNotFoundException) when (conversationId is null)
            {
                // The default conversation was deleted: the single-chat endpoints start a new one.
                await conversations.EnsureDefaultAsync(userId, time.GetUtcNow(), cancellationToken);
                return await store.CreateAsync(turn, conversationId, content, started, max, cancellationToken);
            }
        }, cancellationToken);
    }

    /// <summary>
    /// Answers the user message of <paramref name="answerId"/> again, in a new turn, when that is the conversation's
    /// last current answer and its turn has ended; the old answer stays as an alternative. Nothing is stored when the
    /// runtime cannot regenerate (Letta keeps its own history).
    /// </summary>
    public async Task<TurnStart> RegenerateAsync(Guid userId, Guid conversationId, Guid answerId, string? idempotencyKey, CancellationToken cancellationToken)
    {
        // Distinct from any message sent: a key used for a send and then for a regenerate is reused for another request.
        var hash = Hash($"regenerate\n{conversationId}\n{answerId}");
        if (await messages.FindAsync(userId, conversationId, answerId, cancellationToken) is not { } answer)
        {
            return await conversations.FindAsync(userId, conversationId, cancellationToken) is null ? new TurnStart.NotFound() : new TurnStart.MessageNotFound();
        }

        // Cheap refusals first; the transaction checks again that it is still the last answer.
        if (answer is not { Role: "assistant", ReplyToId: { } userMessageId }
            || await messages.FindAsync(userId, conversationId, userMessageId, cancellationToken) is not { } question)
        {
            return new TurnStart.NotLastAnswer();
        }

        var agent = await agents.GetAsync(userId, cancellationToken);
        if (!agents.RuntimeFor(agent).CanRegenerate)
        {
            return new TurnStart.RegenerateUnsupported(agent.Runtime);
        }

        var turn = NewTurn(userId, idempotencyKey, hash, userMessageId) with { ConversationId = conversationId };
        return await StartAsync(turn, question.Content, (started, max) => store.RegenerateAsync(turn, answerId, started, max, cancellationToken), cancellationToken);
    }

    /// <summary>Takes a place in the queue, stores the turn (<paramref name="create"/>: null when its key was taken meanwhile), and queues it.</summary>
    private async Task<TurnStart> StartAsync(TurnRecord turn, string content, Func<StoredEvent, int, Task<TurnRecord?>> create, CancellationToken cancellationToken)
    {
        if (turn.IdempotencyKey is not null && await store.FindByIdempotencyKeyAsync(turn.UserId, turn.IdempotencyKey, cancellationToken) is { } earlier)
        {
            return Attach(earlier, turn.RequestHash!);
        }

        // Refused before anything is reserved or stored: the turn would only fail at the open breaker.
        if (await agents.UpstreamRetryAfterAsync(turn.UserId, cancellationToken) is { } retryAfter)
        {
            return new TurnStart.UpstreamUnavailable(retryAfter);
        }

        if (!queue.TryReserve())
        {
            return new TurnStart.QueueFull();
        }

        var started = TurnEvents.Create(1, TurnEvents.Started, new TurnStartedData(turn.Id, turn.UserMessageId, turn.AssistantMessageId));
        var max = Math.Max(1, options.Value.MaxConcurrentTurnsPerUser);
        TurnRecord? created;
        try
        {
            created = await create(started, max);
        }
        catch (Exception ex) when (Refusal(ex, max) is { } refused)
        {
            queue.Unreserve();
            return refused;
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
            var winner = await store.FindByIdempotencyKeyAsync(turn.UserId, turn.IdempotencyKey!, cancellationToken);
            return winner is null ? new TurnStart.KeyReused() : Attach(winner, turn.RequestHash!);
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

    private TurnRecord NewTurn(Guid userId, string? idempotencyKey, string hash, Guid userMessageId) => new()
    {
        Id = Guid.CreateVersion7(),
        UserId = userId,
        Status = TurnStatus.Running,
        IdempotencyKey = idempotencyKey,
        RequestHash = hash,
        UserMessageId = userMessageId,
        AssistantMessageId = Guid.CreateVersion7(),
        CreatedAt = Microseconds(time.GetUtcNow()),
        LastEventSeq = 1,
    };

    /// <summary>What a store's refusal means for the caller; null for an exception that is not a refusal.</summary>
    private static TurnStart? Refusal(Exception exception, int max) => exception switch
    {
        TurnConflictException => new TurnStart.Busy(),
        TooManyTurnsException => new TurnStart.TooManyTurns(max),
        ConversationNotFoundException => new TurnStart.NotFound(),
        NotLastAnswerException => new TurnStart.NotLastAnswer(),
        _ => null,
    };

    private static string Hash(string request) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(request)));

    private static TurnStart Attach(TurnRecord earlier, string hash) =>
        earlier.RequestHash == hash ? new TurnStart.Existing(earlier) : new TurnStart.KeyReused();

    // Both stores keep microseconds; the events then carry the same instants as the history.
    private static DateTimeOffset Microseconds(DateTimeOffset instant) => new(instant.UtcTicks - instant.UtcTicks % 10, TimeSpan.Zero);
}
