using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace AiChat.Api.Chat;

/// <summary>Server-Sent Events on a response: the stream's headers, one frame per stored event, a comment line to keep a quiet stream open.</summary>
public sealed class SseWriter(HttpResponse response)
{
    public static string Frame(StoredEvent stored) => $"id: {stored.Seq}\nevent: {stored.Event}\ndata: {stored.Data}\n\n";

    public const string KeepAlive = ": keep-alive\n\n";

    public async Task StartAsync(Guid turnId, CancellationToken cancellationToken)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.Headers["X-Turn-Id"] = turnId.ToString();
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.Body.FlushAsync(cancellationToken);
    }

    public Task WriteAsync(StoredEvent stored, CancellationToken cancellationToken) => SendAsync(Frame(stored), cancellationToken);

    public Task KeepAliveAsync(CancellationToken cancellationToken) => SendAsync(KeepAlive, cancellationToken);

    private async Task SendAsync(string text, CancellationToken cancellationToken)
    {
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}

/// <summary>A turn's events as the response: replayed from a position, then live until the turn ends; the turn goes on if the client leaves.</summary>
public sealed class TurnStreamResult(TurnRecord turn, int afterSeq, TurnFollower follower) : IResult
{
    public async Task ExecuteAsync(HttpContext context)
    {
        var aborted = context.RequestAborted;
        var sse = new SseWriter(context.Response);
        await sse.StartAsync(turn.Id, aborted);
        try
        {
            await follower.FollowAsync(turn, afterSeq, stored => sse.WriteAsync(stored, aborted), () => sse.KeepAliveAsync(aborted), aborted);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client left; the turn goes on and can be resumed with Last-Event-ID.
        }
    }
}
