using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Proof;

/// <summary>
/// Postgres restarted under load, on a private cluster: while it is down every request is answered within a bound
/// with 503 <c>store_unavailable</c> and <c>Retry-After</c> (never a 500) and <c>/health</c> is Unhealthy; once it is
/// back the API recovers by itself — requests succeed, <c>/health</c> is Healthy, the LISTEN/NOTIFY listener is
/// connected again — and every message accepted before the outage is still there.
/// </summary>
[Trait("Category", "Faults")]
[Trait("Category", "Postgres")]
public sealed class StoreOutageTests
{
    private static readonly TimeSpan AnswerBound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task WhilePostgresIsDownTheApiAnswers503AndItRecoversByItselfWithNothingLost()
    {
        await using var postgres = await PrivatePostgres.StartAsync();
        await using var api = new ApiFactory().WithPostgres(postgres.ConnectionString);
        using var client = api.CreateClient();
        client.Timeout = AnswerBound + TimeSpan.FromSeconds(5);
        var user = await client.RegisterAsync();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(ChatTests.Json(SseReader.Send(user.AccessToken, $"before {i}")), TestContext.Current.CancellationToken)).StatusCode);
        }

        var signals = api.Services.GetRequiredService<StoreSignals>();
        await ChatTests.WaitForAsync(() => Task.FromResult(signals.IsListening ? "" : null));
        Assert.Equal("Healthy", await CircuitBreakerTests.HealthAsync(client));

        // Load: the history and the budget read over and over while the server goes away and comes back.
        using var stop = new CancellationTokenSource();
        var answers = new List<(HttpStatusCode Status, string? Code, bool RetryAfter, TimeSpan Took)>();
        var load = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var path in new[] { "/api/v1/chat/history?limit=5", "/api/v1/user/budget" })
                {
                    var watch = Stopwatch.StartNew();
                    using var response = await client.GetWithTokenAsync(path, user.AccessToken);
                    var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    var code = response.StatusCode == HttpStatusCode.OK ? null : JsonDocument.Parse(body).RootElement.GetProperty("code").GetString();
                    lock (answers)
                    {
                        answers.Add((response.StatusCode, code, response.Headers.RetryAfter is not null, watch.Elapsed));
                    }
                }
            }
        }, CancellationToken.None);

        await postgres.DownAsync();
        await ChatTests.WaitForAsync(async () =>
        {
            var health = await client.GetAsync(Microsoft.Extensions.Hosting.Extensions.HealthEndpointPath, TestContext.Current.CancellationToken);
            return health.StatusCode == HttpStatusCode.ServiceUnavailable
                && (await health.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("status").GetString() == "Unhealthy" ? "" : null;
        });
        var refused = await client.SendAsync(ChatTests.Json(SseReader.Send(user.AccessToken, "while down")), TestContext.Current.CancellationToken);
        await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable, "store_unavailable");
        Assert.NotNull(refused.Headers.RetryAfter);
        await ChatTests.WaitForAsync(() => Task.FromResult(answers.Count(a => a.Code == "store_unavailable") >= 5 ? "" : null));
        Assert.False(signals.IsListening);

        await postgres.UpAsync();
        await ChatTests.WaitForAsync(async () => await CircuitBreakerTests.HealthAsync(client) == "Healthy" ? "" : null);
        await ChatTests.WaitForAsync(() => Task.FromResult(signals.IsListening ? "" : null));
        await ChatTests.WaitForAsync(async () =>
            (await client.GetWithTokenAsync("/api/v1/chat/history?limit=5", user.AccessToken)).StatusCode == HttpStatusCode.OK ? "" : null);
        await stop.CancelAsync();
        await load;

        lock (answers)
        {
            Assert.All(answers, answer =>
            {
                Assert.True(answer.Status == HttpStatusCode.OK || (answer.Status == HttpStatusCode.ServiceUnavailable && answer.Code == "store_unavailable" && answer.RetryAfter),
                    $"{(int)answer.Status} {answer.Code}");
                Assert.True(answer.Took < AnswerBound, $"an answer took {answer.Took}");
            });
        }

        var after = await client.SendAsync(ChatTests.Json(SseReader.Send(user.AccessToken, "after")), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        var history = await ChatTests.HistoryAsync(client, user.AccessToken, 50);
        Assert.Equal(["before 0", "before 1", "before 2", "after"],
            history.Where(m => m.GetProperty("role").GetString() == "user").Select(m => m.GetProperty("content").GetString()).Reverse());
        Assert.DoesNotContain(history, m => m.GetProperty("content").GetString() == "while down");
    }
}
