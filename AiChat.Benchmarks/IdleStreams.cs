using System.Net.Http.Json;
using System.Text.Json;

namespace AiChat.Benchmarks;

/// <summary>
/// Many open, quiet SSE streams: <c>GET /api/v1/chat/turns/{id}/events</c> followers of running turns whose model has
/// gone silent (the stub holds its stream after the first word), each on its own connection through the gateway,
/// counting the keep-alive comments that reach it.
/// </summary>
public sealed class IdleStreams(Uri gateway) : IAsyncDisposable
{
    // Connections opened at once while ramping up: more would only queue in the servers' accept backlogs.
    private const int OpeningAtOnce = 200;

    private readonly HttpClient _http = Http.NewClient();
    private readonly CancellationTokenSource _stop = new();
    private long[] _heartbeats = [];
    private Task<bool>[] _readers = [];
    private int _open;

    public int OpenCount => Volatile.Read(ref _open);

    /// <summary>Sends a message the stub will answer with one word and then silence; the turn's id once it has started.</summary>
    public static async Task<Guid> StartQuietTurnAsync(HttpClient http, Uri gateway, string path, string token)
    {
        using var request = Http.Authorized(HttpMethod.Post, new Uri(gateway, path), token);
        request.Content = JsonContent.Create(new { content = $"{StubServer.HoldMarker} wait for me" });
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (name == "turn.started" && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                // Leaving the stream here is a client going away: the turn goes on on the server.
                using var data = JsonDocument.Parse(line.AsMemory(6));
                return data.RootElement.GetProperty("turn_id").GetGuid();
            }
        }

        throw new InvalidOperationException("The quiet turn's stream ended before turn.started.");
    }

    /// <summary>Opens one follower per entry and returns once every one has its response headers.</summary>
    public async Task OpenAsync(IReadOnlyList<(string Token, Guid Turn)> followers)
    {
        _heartbeats = new long[followers.Count];
        using var gate = new SemaphoreSlim(OpeningAtOnce);
        var opened = new Task[followers.Count];
        _readers = new Task<bool>[followers.Count];
        for (var i = 0; i < followers.Count; i++)
        {
            await gate.WaitAsync();
            var headers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            opened[i] = headers.Task.ContinueWith(_ => gate.Release(), TaskScheduler.Default);
            var (token, turn) = followers[i];
            _readers[i] = FollowAsync(i, token, turn, headers);
        }

        await Task.WhenAll(opened).WaitAsync(TimeSpan.FromMinutes(5));
        var failed = _readers.FirstOrDefault(r => r.IsFaulted);
        if (failed is not null)
        {
            await failed; // its exception says why a stream did not open
        }
    }

    public long[] Heartbeats() => _heartbeats.Select(count => Interlocked.Read(ref count)).ToArray();

    /// <summary>Waits for the streams to end (the turns finished); how many saw <c>turn.completed</c>.</summary>
    public async Task<int> WaitForEndsAsync(TimeSpan timeout)
    {
        await ((Task)Task.WhenAll(_readers)).WaitAsync(timeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return _readers.Count(r => r.IsCompletedSuccessfully && r.Result);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await ((Task)Task.WhenAll(_readers)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _http.Dispose();
        _stop.Dispose();
    }

    private async Task<bool> FollowAsync(int index, string token, Guid turn, TaskCompletionSource headers)
    {
        try
        {
            using var request = Http.Authorized(HttpMethod.Get, new Uri(gateway, $"/api/v1/chat/turns/{turn}/events"), token);
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _stop.Token);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"Idle stream {index}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(_stop.Token)}");
            }

            Interlocked.Increment(ref _open);
            headers.TrySetResult();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_stop.Token));
            var completed = false;
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line.StartsWith(':'))
                {
                    Interlocked.Increment(ref _heartbeats[index]);
                }
                else if (line == "event: turn.completed")
                {
                    completed = true;
                }
            }

            Interlocked.Decrement(ref _open);
            return completed;
        }
        catch (Exception ex)
        {
            headers.TrySetException(ex);
            throw;
        }
    }
}
