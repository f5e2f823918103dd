using System.Threading.RateLimiting;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Auth;

/// <summary>
/// The <c>auth</c> policy: register, login and refresh calls per client address, the address the forwarded headers
/// middleware settled (the gateway's word, never a client's own <c>X-Forwarded-For</c>).
/// </summary>
public sealed class ClientAddressRateLimitPolicy(IOptions<AuthOptions> options) : IRateLimiterPolicy<string>
{
    public Func<OnRejectedContext, CancellationToken, ValueTask>? OnRejected { get; } =
        (rejected, _) => Problems.RateLimitedAsync(rejected, AuthProblemCodes.RateLimited, "Too many attempts.");

    public RateLimitPartition<string> GetPartition(HttpContext httpContext) =>
        RateLimitPartition.GetFixedWindowLimiter(httpContext.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = options.Value.RateLimits.PerClientAddress,
            Window = options.Value.RateLimits.Window,
            QueueLimit = 0,
        });
}
