using System.Text;
using System.Text.Json;
using AiChat.Api.Chat;

namespace AiChat.Api.Clients;

/// <summary>
/// A turn as OpenAI's stream of <c>chat.completion.chunk</c>s: the role, then each <c>delta.content</c>, a last chunk
/// with <c>finish_reason</c>, the usage chunk when <c>stream_options.include_usage</c>, then <c>[DONE]</c>. Nothing is
/// sent until the turn says something, so a turn refused before its first word (the budget) is an HTTP error the SDK
/// raises; a failure after it is an <c>error</c> chunk, which the SDKs raise too.
/// </summary>
public sealed class CompletionStreamResult(Exchange exchange, bool includeUsage, OpenAiServices services) : IResult
{
    private bool _started;

    public async Task ExecuteAsync(HttpContext context)
    {
        var answered = false;
        try
        {
            await services.Follower.FollowAsync(exchange.Turn, 0, async stored =>
            {
                using var data = JsonDocument.Parse(stored.Data);
                switch (stored.Event)
                {
                    case TurnEvents.MessageDelta:
                        await ChunkAsync(context, new { content = data.RootElement.GetProperty("text").GetString() ?? "" }, null);
                        break;
                    case TurnEvents.Completed:
                        answered = true;
                        await CompleteAsync(context, data.RootElement.GetProperty("assistant_message"));
                        break;
                    case TurnEvents.Failed:
                        await FailAsync(context, data.RootElement);
                        break;
                }
            }, async () =>
            {
                await StartAsync(context);
                await context.Response.WriteAsync(": keep-alive\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }, context.RequestAborted);
        }
        finally
        {
            if (!answered)
            {
                // The client left before the end: the turn still runs to it, and its answer still names the conversation.
                var result = await services.Follower.WaitForEndAsync(exchange.Turn, CancellationToken.None);
                if (result is { Turn.Status: TurnStatus.Completed, AssistantMessage: { } assistant })
                {
                    await OpenAiApi.RememberAsync(exchange, assistant.Content, services);
                }
            }
        }
    }

    private async Task CompleteAsync(HttpContext context, JsonElement message)
    {
        await OpenAiApi.RememberAsync(exchange, message.GetProperty("content").GetString() ?? "", services);
        await ChunkAsync(context, new { }, "stop");
        if (includeUsage)
        {
            await WriteAsync(context, new
            {
                id = OpenAiApi.CompletionId(exchange.Turn),
                @object = "chat.completion.chunk",
                created = OpenAiApi.Created(exchange.Turn),
                model = exchange.Model,
                choices = Array.Empty<object>(),
                usage = UsageOf(message),
            });
        }

        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    /// <summary>A failure before anything was sent is the HTTP error; after, an error chunk ends the stream.</summary>
    private async Task FailAsync(HttpContext context, JsonElement problem)
    {
        var status = problem.GetProperty("status").GetInt32();
        var code = problem.GetProperty("code").GetString() ?? "";
        var detail = problem.GetProperty("detail").GetString() ?? "";
        if (!_started)
        {
            await OpenAiErrors.Of(status, code, detail).ExecuteAsync(context);
            return;
        }

        await WriteAsync(context, OpenAiErrors.Envelope(status, code, detail));
    }

    private static CompletionUsage? UsageOf(JsonElement message) =>
        message.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object
            ? OpenAiApi.UsageOf(usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32())
            : null;

    private async Task StartAsync(HttpContext context)
    {
        if (_started)
        {
            return;
        }

        _started = true;
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        await WriteChunkAsync(context, new { role = "assistant", content = "" }, null);
    }

    private async Task ChunkAsync(HttpContext context, object delta, string? finishReason)
    {
        await StartAsync(context);
        await WriteChunkAsync(context, delta, finishReason);
    }

    private Task WriteChunkAsync(HttpContext context, object delta, string? finishReason) => WriteAsync(context, new
    {
        id = OpenAiApi.CompletionId(exchange.Turn),
        @object = "chat.completion.chunk",
        created = OpenAiApi.Created(exchange.Turn),
        model = exchange.Model,
        choices = new[] { new { index = 0, delta, finish_reason = finishReason } },
    });

    private static async Task WriteAsync(HttpContext context, object chunk)
    {
        var json = JsonSerializer.Serialize(chunk, OpenAiApi.Json);
        await context.Response.WriteAsync($"data: {json}\n\n", Encoding.UTF8, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }
}
