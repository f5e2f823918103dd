using System.Threading.RateLimiting;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Chat;

/// <summary>
/// Per-user limits of the chat endpoints (ASP.NET Core rate limiting, partitioned by the token's user id, in this
/// instance's memory): messages per minute on every endpoint that starts a turn, and open event streams. The stream limit
/// is the middleware's global limiter, so it is taken before the message limit and a refused stream spends no message.
/// </summary>
public static class ChatRateLimits
{
    /// <summary>The policy on <c>POST /chat/message</c>, <c>POST /conversations/{id}/messages</c> and <c>.../regenerate</c>.</summary>
    public const string MessagesPolicy = "chat-messages";

    /// <summary>Streams end when their turn does or their client leaves: a short wait is the honest hint.</summary>
    public static readonly TimeSpan StreamRetryAfter = TimeSpan.FromSeconds(5);

    public static IServiceCollection AddChatRateLimits(this IServiceCollection services)
    {
        services.AddSingleton<OpenStreamLimiter>();
        services.AddSingleton<MessageAllowance>();
        services.AddRateLimiter(options => options.AddPolicy<Guid, MessageRateLimitPolicy>(MessagesPolicy));
        services.AddOptions<RateLimiterOptions>().Configure<OpenStreamLimiter>((options, streams) =>
        {
            options.GlobalLimiter = streams.Limiter;
            // The default refusal is the global limiter's; every named policy answers its own.
            options.OnRejected = OpenStreamLimiter.RejectAsync;
        });
        return services;
    }

    /// <summary>Marks an endpoint whose answer is an event stream: always, or when the request accepts one.</summary>
    public static TBuilder StreamsEvents<TBuilder>(this TBuilder builder, EventStreamEndpoint when) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(when);
}

/// <summary>Endpoint metadata: this endpoint answers with an event stream, always or only for <c>Accept: text/event-stream</c>.</summary>
public sealed class EventStreamEndpoint
{
    public static readonly EventStreamEndpoint Always = new(always: true);

    public static readonly EventStreamEndpoint WhenAccepted = new(always: false);

    private readonly bool _always;

    private EventStreamEndpoint(bool always) => _always = always;

    /// <summary>True when this request gets an event stream as its answer.</summary>
    public static bool Opens(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<EventStreamEndpoint>() is { } stream && (stream._always || ChatApi.WantsEventStream(context.Request));
}

/// <summary>Messages per user per minute (a fixed window: its Retry-After is the window, an upper bound on the wait).</summary>
public sealed class MessageRateLimitPolicy(MessageAllowance allowance, IOptions<ChatOptions> options) : IRateLimiterPolicy<Guid>
{
    public Func<OnRejectedContext, CancellationToken, ValueTask>? OnRejected { get; } = (rejected, _) =>
        Problems.RateLimitedAsync(rejected, ChatProblems.RateLimited,
            $"At most {options.Value.RateLimits.MessagesPerMinute} messages a minute; this one was not stored.");

    public RateLimitPartition<Guid> GetPartition(HttpContext httpContext) =>
        httpContext.User.Identity?.IsAuthenticated == true
            ? RateLimitPartition.Get(httpContext.User.UserId(), allowance.For)
            : RateLimitPartition.GetNoLimiter(Guid.Empty);
}

/// <summary>
/// Each user's messages a minute, one allowance for every way in: the turn endpoints (through
/// <see cref="MessageRateLimitPolicy"/>), the OpenAI-compatible endpoint, and the MCP server's messages (<see cref="TryTake"/>).
/// </summary>
public sealed class MessageAllowance(IOptions<ChatOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<Guid> _limiter = PartitionedRateLimiter.Create<Guid, Guid>(userId =>
        RateLimitPartition.GetFixedWindowLimiter(userId, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = Math.Max(1, options.Value.RateLimits.MessagesPerMinute),
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));

    public int PerMinute => Math.Max(1, options.Value.RateLimits.MessagesPerMinute);

    /// <summary>Spends one of the user's messages; false (with when to try again) when none is left this minute.</summary>
    public bool TryTake(Guid userId, out TimeSpan retryAfter)
    {
        using var lease = _limiter.AttemptAcquire(userId);
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
        return lease.IsAcquired;
    }

    /// <summary>The user's allowance as a limiter for the middleware's partitions (which may drop it: the count stays here).</summary>
    public RateLimiter For(Guid userId) => new Shared(_limiter, userId);

    public void Dispose() => _limiter.Dispose();

    private sealed class Shared(PartitionedRateLimiter<Guid> limiter, Guid userId) : RateLimiter
    {
        public override TimeSpan? IdleDuration => null;

        public override RateLimiterStatistics? GetStatistics() => limiter.GetStatistics(userId);

        protected override RateLimitLease AttemptAcquireCore(int permitCount) => limiter.AttemptAcquire(userId, permitCount);

        protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
            limiter.AcquireAsync(userId, permitCount, cancellationToken);
    }
}

/// <summary>Open event streams per user: a concurrency lease held for as long as the streaming response runs.</summary>
public sealed class OpenStreamLimiter(IOptions<ChatOptions> options) : IDisposable
{
    public PartitionedRateLimiter<HttpContext> Limiter { get; } = PartitionedRateLimiter.Create<HttpContext, Guid>(context =>
        EventStreamEndpoint.Opens(context) && context.User.Identity?.IsAuthenticated == true
            ? RateLimitPartition.GetConcurrencyLimiter(context.User.UserId(), _ => new ConcurrencyLimiterOptions
            {
                PermitLimit = Math.Max(1, options.Value.MaxOpenStreamsPerUser),
                QueueLimit = 0,
            })
            : RateLimitPartition.GetNoLimiter(Guid.Empty));

    public static ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        if (!EventStreamEndpoint.Opens(rejected.HttpContext))
        {
            return Problems.RateLimitedAsync(rejected, ProblemCodes.TooManyRequests, "Too many requests.");
        }

        var max = rejected.HttpContext.RequestServices.GetRequiredService<IOptions<ChatOptions>>().Value.MaxOpenStreamsPerUser;
        return Problems.RateLimitedAsync(rejected, ChatProblems.TooManyStreams,
            $"You have {max} event streams open; close one (or let its turn end) before opening another. Nothing was stored.",
            ChatRateLimits.StreamRetryAfter);
    }

    public void Dispose() => Limiter.Dispose();
}
