using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Auth;

/// <summary>
/// Register and login attempts per email (the per-address limit is the rate-limiting middleware's <c>auth</c> policy).
/// The email only exists once the body is read, so the handler asks this limiter itself.
/// </summary>
public sealed class AuthRateLimits(IOptions<AuthOptions> options) : IDisposable
{
    public const string PolicyName = "auth";

    private readonly PartitionedRateLimiter<string> _perEmail = PartitionedRateLimiter.Create<string, string>(email =>
        RateLimitPartition.GetFixedWindowLimiter(email, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = options.Value.RateLimits.PerEmail,
            Window = options.Value.RateLimits.Window,
            QueueLimit = 0,
        }));

    /// <summary>Null when the attempt may go on; else how long to wait.</summary>
    public TimeSpan? TryAcquireForEmail(string email)
    {
        using var lease = _perEmail.AttemptAcquire(email.Trim().ToLowerInvariant());
        if (lease.IsAcquired)
        {
            return null;
        }

        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : options.Value.RateLimits.Window;
    }

    public void Dispose() => _perEmail.Dispose();
}
