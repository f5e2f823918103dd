using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace AiChat.Gateway;

/// <summary>
/// A request that never reached an API instance (its connection was refused: the instance is gone and the health
/// checks have not yet taken it out) is sent once more, to another healthy instance, before the client sees a 502.
/// Only when nothing can have happened upstream: no byte of a response, and a body the gateway kept (none, or one of
/// at most <see cref="MaxReplayedBodyBytes"/> with a declared length).
/// </summary>
public static class ReplicaRetry
{
    public const long MaxReplayedBodyBytes = 64 * 1024;

    /// <summary>First in the proxy pipeline, so the retry goes through load balancing and the passive health checks again.</summary>
    public static IReverseProxyApplicationBuilder UseRetryOfUnreachedRequests(this IReverseProxyApplicationBuilder proxy)
    {
        proxy.Use(RetryAsync);
        return proxy;
    }

    private static async Task RetryAsync(HttpContext context, Func<Task> next)
    {
        var feature = context.GetReverseProxyFeature();
        var candidates = feature.AvailableDestinations;
        var hasBody = context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0;
        if (candidates.Count < 2 || (hasBody && !(context.Request.ContentLength <= MaxReplayedBodyBytes)))
        {
            await next();
            return;
        }

        if (hasBody)
        {
            context.Request.EnableBuffering();
        }

        await next();

        var failed = feature.ProxiedDestination;
        if (!NeverReached(context.GetForwarderErrorFeature()) || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested || failed is null)
        {
            return;
        }

        context.Features.Set<IForwarderErrorFeature>(null);
        context.Response.Clear();
        if (hasBody)
        {
            context.Request.Body.Position = 0;
        }

        feature.AvailableDestinations = candidates.Where(destination => destination != failed).ToList();
        await next();
    }

    private static bool NeverReached(IForwarderErrorFeature? error) =>
        error is { Error: ForwarderError.Request, Exception: HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } };
}
