using AiChat.Api.Data;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Tests.Agents;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Chat;

/// <summary>Turns outlive their clients but not their process: what happens when the API dies or stops mid-turn.</summary>
[Trait("Category", "Chat")]
public sealed class TurnRecoveryTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnApiKilledMidTurnKeepsTheMessageMarksTheAnswerFailedAndTakesNewTurnsAfterRestart(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-kill-" + Guid.NewGuid().ToString("N")));
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(string.Join(" ", Enumerable.Repeat("slowly", 200)), chunkSize: 1), TimeSpan.FromMilliseconds(100)));
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-kill-{Guid.NewGuid():N}");
        var settings = new Dictionary<string, string>
        {
            ["Store:DataDirectory"] = dataDirectory,
            ["Llm:Endpoint"] = llm.BaseUrl.ToString(),
            ["Llm:ApiKey"] = llm.ApiKey,
            ["Chat:HeartbeatInterval"] = "00:00:00.5",
            // Ten missed heartbeats: a loaded machine delays the next turn's heartbeats, which must not make it look lost.
            ["Chat:StaleAfter"] = "00:00:05",
            ["Chat:RecoveryInterval"] = "00:00:01",
        };
        if (provider == StoreProvider.Postgres)
        {
            settings[$"ConnectionStrings:{ResourceNames.AiChatDb}"] = await postgres.CreateDatabaseAsync();
        }

        TokenPair pair;
        Guid turnId;
        await using (var first = await ApiProcess.StartAsync(settings))
        {
            using var client = first.Client();
            pair = await client.RegisterAsync();
            var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "tell me something long"));
            var started = (await reader.NextAsync(TestContext.Current.CancellationToken))!;
            turnId = started.Data.GetProperty("turn_id").GetGuid();
            Assert.Equal("message.delta", (await reader.NextAsync(TestContext.Current.CancellationToken))!.Event);

            first.Kill();
        }

        await using var second = await ApiProcess.StartAsync(settings);
        using var again = second.Client();
        var history = await ChatTests.WaitForAsync(async () =>
        {
            var messages = await ChatTests.HistoryAsync(again, pair.AccessToken, 10);
            return messages.Count == 2 && messages[0].GetProperty("status").GetString() == "failed" ? messages : null;
        });
        Assert.Equal("tell me something long", history[1].GetProperty("content").GetString());
        Assert.Equal("complete", history[1].GetProperty("status").GetString());

        var (_, replay) = await SseReader.OpenAsync(again, SseReader.Resume(pair.AccessToken, turnId, null));
        var events = await replay.ReadAllAsync();
        Assert.Equal("turn.failed", events[^1].Event);
        Assert.Equal("turn_lost", events[^1].Data.GetProperty("code").GetString());

        llm.Enqueue(FakeReply.Text("I'm back."));
        var next = await again.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "are you there?")), TestContext.Current.CancellationToken);
        var body = await next.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(next.StatusCode == HttpStatusCode.OK, $"{(int)next.StatusCode} {body}");
        Assert.Equal("I'm back.", JsonDocument.Parse(body).RootElement.GetProperty("assistant_message").GetProperty("content").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ShutdownWaitsForRunningTurnsThenClosesTheRestAsFailed(StoreProvider provider)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-stop-{Guid.NewGuid():N}");
        var quick = new SlowStreamingClient(words: 3, delay: TimeSpan.FromMilliseconds(100));
        var endless = new SlowStreamingClient(words: 1000, delay: TimeSpan.FromMilliseconds(50));
        var database = provider == StoreProvider.Postgres ? await postgres.CreateDatabaseAsync() : null;
        TokenPair patient, hurried;
        await using (var api = new ApiFactory(dataDirectory) { DeleteDataOnDispose = false }
            .WithSetting("Chat:ShutdownGrace", "00:00:01.5")
            .WithServices(s => s.UseModel(new RoutingClient(quick, endless)))
            .OnStore(database))
        {
            using var client = api.CreateClient();
            patient = await client.RegisterAsync();
            hurried = await client.RegisterAsync();
            _ = client.SendAsync(ChatTests.Json(SseReader.Send(patient.AccessToken, "quick")), TestContext.Current.CancellationToken);
            _ = client.SendAsync(ChatTests.Json(SseReader.Send(hurried.AccessToken, "endless")), TestContext.Current.CancellationToken);
            foreach (var user in new[] { patient, hurried })
            {
                await ChatTests.WaitForAsync(async () => (await ChatTests.HistoryAsync(client, user.AccessToken, 10)).Count == 2 ? (object)true : null);
            }
        }

        await using var restarted = new ApiFactory(dataDirectory).OnStore(database);
        using var reader = restarted.CreateClient();
        var finished = await ChatTests.HistoryAsync(reader, patient.AccessToken, 10);
        var stopped = await ChatTests.HistoryAsync(reader, hurried.AccessToken, 10);
        Assert.Equal("complete", finished[0].GetProperty("status").GetString());
        Assert.Equal(quick.FullText, finished[0].GetProperty("content").GetString());
        Assert.Equal("failed", stopped[0].GetProperty("status").GetString());
        Assert.Equal("complete", stopped[1].GetProperty("status").GetString());
    }

    /// <summary>Answers "endless" with one model and everything else with the other.</summary>
    private sealed class RoutingClient(IChatClient quick, IChatClient endless) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Pick(messages).GetResponseAsync(messages, options, cancellationToken);

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Pick(messages).GetStreamingResponseAsync(messages, options, cancellationToken);

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }

        private IChatClient Pick(IEnumerable<ChatMessage> messages) => messages.Last().Text == "endless" ? endless : quick;
    }
}
