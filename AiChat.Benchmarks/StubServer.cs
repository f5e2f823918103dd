using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.ML.Tokenizers;

namespace AiChat.Benchmarks;

/// <summary>
/// The benchmark's own process for the model side, on Kestrel: an OpenAI-compatible streaming
/// <c>/v1/chat/completions</c> (50 one-word chunks, no delay, a final usage chunk with the prompt counted by the same
/// tokenizer OpenAI uses) and the <b>floor</b>, <c>/floor</c>: a bare relay of that stream as SSE, what any relay of it
/// must do at least. A last user message containing <see cref="HoldMarker"/> makes the stream go quiet after its first
/// chunk until <c>/release</c>, for the idle-stream part.
/// </summary>
public sealed class StubServer
{
    public const string Role = "stub";
    public const string HoldMarker = "[hold]";
    public const int Chunks = 50;

    private static readonly string[] Words = "The benchmark stub streams these fifty words one by one without any delay so that the time measured is the time of AiChat itself and of the sockets between its parts while a real model would take much longer than all of this together for a reply of this length".Split(' ');
    private static readonly byte[] FloorRequest = Encoding.UTF8.GetBytes("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}""");
    private static readonly Tokenizer Tokenizer = TiktokenTokenizer.CreateForModel("gpt-4o");

    private readonly ConcurrentDictionary<string, byte[][]> _chunks = new();
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = int.MaxValue });
    private readonly Uri _completions;
    private TaskCompletionSource _release = NewRelease();

    private StubServer(int port) => _completions = new Uri($"http://127.0.0.1:{port}/v1/chat/completions");

    public static async Task<int> RunAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var stub = new StubServer(port);
        app.MapGet("/health", () => "ok");
        app.MapPost("/v1/chat/completions", stub.CompleteAsync);
        app.MapPost("/floor", stub.RelayAsync);
        app.MapPost("/release", stub.Release);
        await app.RunAsync();
        return 0;
    }

    private async Task CompleteAsync(HttpContext context)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
        var request = body.RootElement;
        if (!request.TryGetProperty("stream", out var stream) || stream.ValueKind != JsonValueKind.True)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("""{"error":{"message":"the benchmark stub streams only"}}""");
            return;
        }

        var model = request.TryGetProperty("model", out var named) ? named.GetString() ?? "gpt-4o-mini" : "gpt-4o-mini";
        var hold = LastUserText(request).Contains(HoldMarker, StringComparison.Ordinal);
        var prompt = PromptTokens(request);
        var release = _release.Task;

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var chunks = _chunks.GetOrAdd(model, ChunksFor);
        var output = context.Response.Body;
        for (var i = 0; i < chunks.Length; i++)
        {
            await output.WriteAsync(chunks[i], context.RequestAborted);
            await output.FlushAsync(context.RequestAborted);
            if (hold && i == 0)
            {
                await release.WaitAsync(context.RequestAborted);
            }
        }

        var usage = JsonSerializer.Serialize(new { id = "chatcmpl-bench", @object = "chat.completion.chunk", created = 1_700_000_000, model, choices = Array.Empty<object>(), usage = new { prompt_tokens = prompt, completion_tokens = Chunks, total_tokens = prompt + Chunks } });
        await output.WriteAsync(Encoding.UTF8.GetBytes($"data: {usage}\n\ndata: [DONE]\n\n"), context.RequestAborted);
    }

    /// <summary>The floor: calls the stub over a loopback socket and writes each chunk on as an SSE event, nothing else.</summary>
    private async Task RelayAsync(HttpContext context)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _completions) { Content = new ByteArrayContent(FloorRequest) };
        request.Content.Headers.ContentType = new("application/json");
        using var upstream = await _upstream.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var output = context.Response.Body;
        using var reader = new StreamReader(await upstream.Content.ReadAsStreamAsync(context.RequestAborted));
        var id = 0;
        while (await reader.ReadLineAsync(context.RequestAborted) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]")
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(line.AsMemory(6));
            var root = chunk.RootElement;
            string? frame = null;
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                frame = $"id: {++id}\nevent: usage\ndata: {{\"prompt_tokens\":{usage.GetProperty("prompt_tokens").GetInt32()},\"completion_tokens\":{usage.GetProperty("completion_tokens").GetInt32()}}}\n\n";
            }
            else if (root.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 } text)
            {
                frame = $"id: {++id}\nevent: message.delta\ndata: {JsonSerializer.Serialize(new { text })}\n\n";
            }

            if (frame is not null)
            {
                await output.WriteAsync(Encoding.UTF8.GetBytes(frame), context.RequestAborted);
                await output.FlushAsync(context.RequestAborted);
            }
        }

        await output.WriteAsync(Encoding.UTF8.GetBytes($"id: {++id}\nevent: turn.completed\ndata: {{}}\n\n"), context.RequestAborted);
    }

    private IResult Release()
    {
        Interlocked.Exchange(ref _release, NewRelease()).TrySetResult();
        return Results.Ok();
    }

    private static TaskCompletionSource NewRelease() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static byte[][] ChunksFor(string model)
    {
        string Chunk(object delta, string? finish) =>
            "data: " + JsonSerializer.Serialize(new { id = "chatcmpl-bench", @object = "chat.completion.chunk", created = 1_700_000_000, model, choices = new[] { new { index = 0, delta, finish_reason = finish } } }) + "\n\n";

        var chunks = Words.Select((word, i) => Chunk(i == 0 ? new { role = "assistant", content = word + " " } : (object)new { content = word + " " }, null)).ToList();
        chunks.Add(Chunk(new { }, "stop"));
        return chunks.Select(Encoding.UTF8.GetBytes).ToArray();
    }

    private static string LastUserText(JsonElement request) =>
        request.GetProperty("messages").EnumerateArray().LastOrDefault(m => m.GetProperty("role").GetString() == "user") is { ValueKind: JsonValueKind.Object } last
            ? Text(last)
            : "";

    // As OpenAI counts: the text of every message with a few tokens of framing each, and the tools' definitions.
    private static int PromptTokens(JsonElement request)
    {
        var tokens = request.GetProperty("messages").EnumerateArray().Sum(m => Tokenizer.CountTokens(Text(m)) + 4);
        return request.TryGetProperty("tools", out var tools) ? tokens + Tokenizer.CountTokens(tools.GetRawText()) : tokens;
    }

    private static string Text(JsonElement message) =>
        !message.TryGetProperty("content", out var content) ? ""
        : content.ValueKind == JsonValueKind.String ? content.GetString() ?? ""
        : content.ValueKind == JsonValueKind.Array ? string.Concat(content.EnumerateArray().Select(part => part.TryGetProperty("text", out var text) ? text.GetString() : ""))
        : "";
}
