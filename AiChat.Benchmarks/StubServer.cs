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
/// chunk until <c>/release</c>, for the idle-stream part; one containing <see cref="SlowMarker"/> streams its chunks
/// slowly (for the soak's cancels and resumes). Started with <see cref="FaultsFlag"/> (the soak), it injects faults into
/// exactly one call in <see cref="FaultEvery"/>, the kinds of <see cref="StubFaults"/> in turn, counted at <c>/faults</c>.
/// </summary>
public sealed class StubServer
{
    public const string Role = "stub";
    public const string FaultsFlag = "--faults";
    public const string HoldMarker = "[hold]";
    public const string SlowMarker = "[slow]";
    public const int Chunks = 50;

    /// <summary>Every 20th call gets a fault: 5 %.</summary>
    public const int FaultEvery = 20;

    // A slow stream: this long between chunks, so a turn lasts about a second and a half.
    private static readonly TimeSpan SlowChunk = TimeSpan.FromMilliseconds(30);

    private static readonly string[] Words = "The benchmark stub streams these fifty words one by one without any delay so that the time measured is the time of AiChat itself and of the sockets between its parts while a real model would take much longer than all of this together for a reply of this length".Split(' ');
    private static readonly byte[] FloorRequest = Encoding.UTF8.GetBytes("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}""");
    private static readonly Tokenizer Tokenizer = TiktokenTokenizer.CreateForModel("gpt-4o");

    private readonly ConcurrentDictionary<string, byte[][]> _chunks = new();
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = int.MaxValue });
    private readonly Uri _completions;
    private readonly StubFaults? _faults;
    private TaskCompletionSource _release = NewRelease();

    private StubServer(int port, bool faults)
    {
        _completions = new Uri($"http://127.0.0.1:{port}/v1/chat/completions");
        _faults = faults ? new StubFaults() : null;
    }

    public static async Task<int> RunAsync(int port, bool faults = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var stub = new StubServer(port, faults);
        app.MapGet("/health", () => "ok");
        app.MapGet("/faults", () => stub._faults?.Counts() ?? new StubFaultCounts(0, new Dictionary<string, int>()));
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
        var last = LastUserText(request);
        var hold = last.Contains(HoldMarker, StringComparison.Ordinal);
        var slow = last.Contains(SlowMarker, StringComparison.Ordinal);
        var prompt = PromptTokens(request);
        var release = _release.Task;
        var fault = _faults?.Next();
        if (fault is StubFaults.ServerError or StubFaults.RateLimited)
        {
            context.Response.StatusCode = fault == StubFaults.ServerError ? StatusCodes.Status500InternalServerError : StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = "1";
            await context.Response.WriteAsJsonAsync(new { error = new { message = $"injected {fault}", type = fault, code = fault } });
            return;
        }

        if (fault == StubFaults.Slow)
        {
            await Task.Delay(StubFaults.SlowStart, context.RequestAborted);
        }

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var chunks = _chunks.GetOrAdd(model, ChunksFor);
        var output = context.Response.Body;
        for (var i = 0; i < chunks.Length; i++)
        {
            if (i == StubFaults.CutAfterChunks && fault is StubFaults.Disconnect or StubFaults.Malformed)
            {
                await CutAsync(context, fault);
                return;
            }

            await output.WriteAsync(chunks[i], context.RequestAborted);
            await output.FlushAsync(context.RequestAborted);
            if (hold && i == 0)
            {
                await release.WaitAsync(context.RequestAborted);
            }
            else if (slow || fault == StubFaults.Slow)
            {
                await Task.Delay(SlowChunk, context.RequestAborted);
            }
        }

        var usage = JsonSerializer.Serialize(new { id = "chatcmpl-bench", @object = "chat.completion.chunk", created = 1_700_000_000, model, choices = Array.Empty<object>(), usage = new { prompt_tokens = prompt, completion_tokens = Chunks, total_tokens = prompt + Chunks } });
        await output.WriteAsync(Encoding.UTF8.GetBytes($"data: {usage}\n\ndata: [DONE]\n\n"), context.RequestAborted);
    }

    /// <summary>Ends a stream part-way: the connection dropped, or a chunk that is not JSON followed by the stream's end.</summary>
    private static async Task CutAsync(HttpContext context, string fault)
    {
        if (fault == StubFaults.Disconnect)
        {
            context.Abort();
            return;
        }

        await context.Response.Body.WriteAsync("data: {\"id\":\"chatcmpl-bench\",\"choices\":[{\"delta\":{\"content\":\n\ndata: [DONE]\n\n"u8.ToArray(), context.RequestAborted);
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

/// <summary>
/// The soak's faults, one call in <see cref="StubServer.FaultEvery"/>, the kinds in turn: an HTTP 500, a 429, the
/// connection dropped mid-stream, a malformed chunk mid-stream, a slow response (late headers, slow chunks, then complete).
/// </summary>
public sealed class StubFaults
{
    public const string ServerError = "http_500";
    public const string RateLimited = "http_429";
    public const string Disconnect = "disconnect_mid_stream";
    public const string Malformed = "malformed_chunk";
    public const string Slow = "slow_response";

    public static readonly string[] Kinds = [ServerError, RateLimited, Disconnect, Malformed, Slow];

    /// <summary>Chunks a cut stream sends before it is cut: some text reaches the client first.</summary>
    public const int CutAfterChunks = 10;

    public static readonly TimeSpan SlowStart = TimeSpan.FromSeconds(2);

    private readonly int[] _injected = new int[Kinds.Length];
    private long _calls;

    /// <summary>Counts a call; the fault it gets, or null.</summary>
    public string? Next()
    {
        var call = Interlocked.Increment(ref _calls);
        if (call % StubServer.FaultEvery != 0)
        {
            return null;
        }

        var kind = (int)((call / StubServer.FaultEvery - 1) % Kinds.Length);
        Interlocked.Increment(ref _injected[kind]);
        return Kinds[kind];
    }

    public StubFaultCounts Counts() =>
        new(Interlocked.Read(ref _calls), Kinds.Select((kind, i) => (kind, count: Volatile.Read(ref _injected[i]))).ToDictionary(k => k.kind, k => k.count));
}

/// <summary>What <c>/faults</c> answers: chat completion calls received, and faults injected by kind.</summary>
public sealed record StubFaultCounts(long Calls, IReadOnlyDictionary<string, int> Injected);
