using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace AiChat.Benchmarks;

/// <summary>A registered user of the measured system: its token and the conversations the run gave it.</summary>
public sealed record BenchUser(Guid Id, string Token)
{
    public List<Guid> Conversations { get; } = [];
}

/// <summary>One streamed turn as the client saw it: until the end of its response, and what its usage events said.</summary>
public sealed record TurnOutcome(double Milliseconds, int PromptTokens, int Calls);

/// <summary>What the benchmark asks of AiChat over HTTP, as a frontend would: register, open conversations, stream turns.</summary>
public static class Http
{
    public static HttpClient NewClient() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        MaxConnectionsPerServer = int.MaxValue,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    })
    {
        Timeout = TimeSpan.FromMinutes(10),
    };

    public static async Task<BenchUser> RegisterAsync(HttpClient http, Uri api)
    {
        using var response = await http.PostAsJsonAsync(new Uri(api, "/api/v1/auth/register"),
            new { email = $"bench-{Guid.NewGuid():N}@example.com", password = $"bench-{Guid.NewGuid():N}", name = "Ana" });
        var body = await EnsureAsync(response, "register").ConfigureAwait(false);
        return new BenchUser(body.GetProperty("user").GetProperty("id").GetGuid(), body.GetProperty("access_token").GetString()!);
    }

    /// <summary>A new conversation with a title of its own, so no title call follows its first exchange.</summary>
    public static async Task<Guid> NewConversationAsync(HttpClient http, Uri api, BenchUser user)
    {
        using var request = Authorized(HttpMethod.Post, new Uri(api, "/api/v1/conversations"), user.Token);
        request.Content = JsonContent.Create(new { title = "benchmark" });
        using var response = await http.SendAsync(request);
        return (await EnsureAsync(response, "new conversation")).GetProperty("id").GetGuid();
    }

    public static async Task<Guid> DefaultConversationAsync(HttpClient http, Uri api, BenchUser user)
    {
        using var request = Authorized(HttpMethod.Get, new Uri(api, "/api/v1/conversations?limit=50"), user.Token);
        using var response = await http.SendAsync(request);
        var page = await EnsureAsync(response, "conversations");
        var id = page.GetProperty("conversations").EnumerateArray().First(c => c.GetProperty("is_default").GetBoolean()).GetProperty("id").GetGuid();
        using var rename = Authorized(HttpMethod.Patch, new Uri(api, $"/api/v1/conversations/{id}"), user.Token);
        rename.Content = JsonContent.Create(new { title = "benchmark" });
        using var renamed = await http.SendAsync(rename);
        await EnsureAsync(renamed, "title the default conversation");
        return id;
    }

    public static string MessagesPath(Guid conversation) => $"/api/v1/conversations/{conversation}/messages";

    /// <summary>Posts a message as SSE and reads the stream to its end; fails on <c>turn.failed</c> or a stream without <c>turn.completed</c>.</summary>
    public static async Task<TurnOutcome> StreamTurnAsync(HttpClient http, Uri baseAddress, string path, string? token, string content)
    {
        using var request = Authorized(HttpMethod.Post, new Uri(baseAddress, path), token);
        request.Content = JsonContent.Create(new { content });
        request.Headers.Accept.ParseAdd("text/event-stream");
        var started = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? name = null;
        var prompt = 0;
        var calls = 0;
        var completed = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                switch (name)
                {
                    case "usage":
                        using (var usage = JsonDocument.Parse(line.AsMemory(6)))
                        {
                            prompt += usage.RootElement.GetProperty("prompt_tokens").GetInt32();
                            calls++;
                        }

                        break;
                    case "turn.completed":
                        completed = true;
                        break;
                    case "turn.failed":
                        throw new InvalidOperationException($"POST {path}: turn.failed {line[6..]}");
                }
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return completed ? new TurnOutcome(elapsed, prompt, calls) : throw new InvalidOperationException($"POST {path}: the stream ended without turn.completed.");
    }

    /// <summary>A GET read to its end; its time in milliseconds.</summary>
    public static async Task<double> GetAsync(HttpClient http, Uri baseAddress, string path, string token)
    {
        using var request = Authorized(HttpMethod.Get, new Uri(baseAddress, path), token);
        var started = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return response.IsSuccessStatusCode ? elapsed : throw new InvalidOperationException($"GET {path}: {(int)response.StatusCode}");
    }

    public static async Task<JsonElement> GetJsonAsync(HttpClient http, Uri baseAddress, string path, string token)
    {
        using var request = Authorized(HttpMethod.Get, new Uri(baseAddress, path), token);
        using var response = await http.SendAsync(request);
        return await EnsureAsync(response, path);
    }

    public static HttpRequestMessage Authorized(HttpMethod method, Uri uri, string? token)
    {
        var request = new HttpRequestMessage(method, uri);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return request;
    }

    public static string Number(double value) => value switch
    {
        < 10 => value.ToString("0.00", CultureInfo.InvariantCulture),
        < 100 => value.ToString("0.0", CultureInfo.InvariantCulture),
        _ => value.ToString("#,0", CultureInfo.InvariantCulture),
    };

    private static async Task<JsonElement> EnsureAsync(HttpResponseMessage response, string what)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{what}: {(int)response.StatusCode} {text}");
        }

        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }
}
