extern alias api;

using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using api::AiChat.Api.Billing;
using api::AiChat.Api.Data;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// AiChat's benchmark: the hot paths over real HTTP on loopback, the API on SQLite with the offline model.
// Run: dotnet run -c Release --project AiChat.Benchmarks   (prints a Markdown table)
var rows = new List<string>();
var iterations = args.Length > 0 && int.TryParse(args[0], out var n) ? n : 200;

await using var api = new BenchApi();
var baseAddress = api.Start();
using var http = new HttpClient { BaseAddress = baseAddress };

var user = await RegisterAsync(http);
await SeedHistoryAsync(api, user.Id, 100);
var small = await RegisterAsync(http);
await SeedHistoryAsync(api, small.Id, 100);
var large = await RegisterAsync(http);
await SeedHistoryAsync(api, large.Id, 100_000);

rows.Add(await MeasureAsync("history page (50) of 100 messages", iterations, () => GetAsync(http, "/api/v1/chat/history?limit=50", small.Token)));
rows.Add(await MeasureAsync("history page (50) of 100,000 messages", iterations, () => GetAsync(http, "/api/v1/chat/history?limit=50", large.Token)));
rows.Add(await MeasureAsync("agent status with 100,000 messages", Math.Max(20, iterations / 10), () => GetAsync(http, "/api/v1/agent/status", large.Token)));

var chatters = new List<(Guid Id, string Token)>();
for (var i = 0; i < 8; i++)
{
    chatters.Add(await RegisterAsync(http));
}

rows.Add(await MeasureAsync("chat turn, JSON (offline model)", iterations, () => ChatJsonAsync(http, user.Token, "My name is Ana")));
rows.Add(await MeasureAsync("chat turn, SSE: first event", iterations, () => FirstEventAsync(http, user.Token)));
rows.Add(await MeasureAsync("chat turn on a 100,000-message history", Math.Max(20, iterations / 10), () => ChatJsonAsync(http, large.Token, "What is my name?")));
rows.Add(await ThroughputAsync("chat turns/s, 8 users at once", chatters, http, TimeSpan.FromSeconds(10)));

var ledger = api.Services.GetRequiredService<Ledger>();
rows.Add(await MeasureAsync("ledger reserve + settle (one user)", iterations * 5, async () =>
{
    var id = await ledger.ReserveAsync(user.Id, null, "gpt-4o-mini", 1000, CancellationToken.None);
    await ledger.SettleAsync(id, 900, 10, 10, "gpt-4o-mini");
}));

Console.WriteLine($"AiChat benchmark — {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, SQLite, offline model, loopback HTTP");
Console.WriteLine();
Console.WriteLine("| scenario | runs | mean ms | p50 ms | p95 ms | other |");
Console.WriteLine("|---|---|---|---|---|---|");
rows.ForEach(Console.WriteLine);

static async Task<string> MeasureAsync(string name, int runs, Func<Task> action)
{
    for (var i = 0; i < Math.Min(10, runs); i++)
    {
        await action(); // warm-up
    }

    var samples = new double[runs];
    for (var i = 0; i < runs; i++)
    {
        var started = Stopwatch.GetTimestamp();
        await action();
        samples[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    Array.Sort(samples);
    return $"| {name} | {runs} | {samples.Average():F2} | {samples[runs / 2]:F2} | {samples[(int)(runs * 0.95)]:F2} | |";
}

static async Task<string> ThroughputAsync(string name, List<(Guid Id, string Token)> users, HttpClient http, TimeSpan duration)
{
    var completed = 0;
    var until = DateTime.UtcNow + duration;
    var started = Stopwatch.GetTimestamp();
    await Task.WhenAll(users.Select(async u =>
    {
        while (DateTime.UtcNow < until)
        {
            await ChatJsonAsync(http, u.Token, "I like jazz");
            Interlocked.Increment(ref completed);
        }
    }));
    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
    return $"| {name} | {completed} | | | | {completed / seconds:F1} turns/s |";
}

static async Task<(Guid Id, string Token)> RegisterAsync(HttpClient http)
{
    var response = await http.PostAsJsonAsync("/api/v1/auth/register", new { email = $"bench-{Guid.NewGuid():N}@example.com", password = "benchmark password", name = "Ana" });
    response.EnsureSuccessStatusCode();
    var body = await response.Content.ReadFromJsonAsync<JsonElement>();
    return (body.GetProperty("user").GetProperty("id").GetGuid(), body.GetProperty("access_token").GetString()!);
}

static async Task GetAsync(HttpClient http, string path, string token)
{
    using var request = new HttpRequestMessage(HttpMethod.Get, path);
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    using var response = await http.SendAsync(request);
    response.EnsureSuccessStatusCode();
    await response.Content.ReadAsByteArrayAsync();
}

static async Task ChatJsonAsync(HttpClient http, string token, string content)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/message") { Content = JsonContent.Create(new { content }) };
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    request.Headers.Accept.ParseAdd("application/json");
    using var response = await http.SendAsync(request);
    response.EnsureSuccessStatusCode();
    await response.Content.ReadAsByteArrayAsync();
}

static async Task FirstEventAsync(HttpClient http, string token)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/message") { Content = JsonContent.Create(new { content = "hello" }) };
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
    request.Headers.Accept.ParseAdd("text/event-stream");
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    response.EnsureSuccessStatusCode();
    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
    while (await reader.ReadLineAsync() is { } line && !line.StartsWith("data:", StringComparison.Ordinal))
    {
    }

    // Let the turn finish before the next one starts: the agent takes one turn at a time.
    while (await reader.ReadLineAsync() is not null)
    {
    }
}

static async Task SeedHistoryAsync(BenchApi api, Guid userId, int count)
{
    await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync();
    await using var transaction = await connection.BeginTransactionAsync();
    var start = DateTimeOffset.UtcNow.AddDays(-30);
    await connection.ExecuteAsync(
        "INSERT INTO messages (id, user_id, conversation_id, role, content, status, created_at) VALUES (@Id, @UserId, (SELECT id FROM conversations WHERE user_id = @UserId AND is_default), @Role, @Content, 'complete', @CreatedAt)",
        Enumerable.Range(1, count).Select(i => new
        {
            Id = Guid.NewGuid(),
            UserId = userId,
            Role = i % 2 == 1 ? "user" : "assistant",
            Content = $"Message {i}: plans, books and the weather in Porto.",
            CreatedAt = start.AddSeconds(i),
        }),
        transaction);
    await transaction.CommitAsync();
}

/// <summary>The real API on a loopback socket and a temporary SQLite store.</summary>
internal sealed class BenchApi : WebApplicationFactory<api::Program>
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), $"aichat-bench-{Guid.NewGuid():N}");

    public Uri Start()
    {
        UseKestrel(0);
        StartServer();
        return new Uri(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.UseSetting("Store:DataDirectory", _data);
        builder.UseSetting("Auth:RateLimits:PerClientAddress", "100000");
        builder.UseSetting("Chat:Workers", "16");

        // The offline model's pace is for people watching a reply; the benchmark measures the server.
        builder.UseSetting("Llm:Offline:WordDelay", "00:00:00");
        builder.ConfigureLogging(logging => logging.ClearProviders().SetMinimumLevel(LogLevel.Warning));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
    }
}
