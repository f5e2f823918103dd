using System.Net;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AiChat.Tests.Proof;

/// <summary>
/// The gateway restarted mid-stream: a client streaming a turn through it loses it, the gateway comes back at the same
/// address, and the client resumes with <c>Last-Event-ID</c>: every remaining event arrives, with no gap and no
/// duplicate, ending in <c>turn.completed</c> — the API kept running the turn meanwhile.
/// </summary>
[Trait("Category", "Faults")]
public sealed class GatewayRestartTests
{
    [Fact]
    public async Task AClientResumesThroughARestartedGatewayWithNoGapOrDuplicate()
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-gw-" + Guid.NewGuid().ToString("N")));
        var api = new ApiFactory()
            .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
            .WithSetting("Llm:ApiKey", llm.ApiKey)
            .WithSetting("Llm:Model", "gpt-4o-mini");
        await using var system = RunningSystem.Start(api);
        var port = Loopback.FreePort();
        var gateway = StartGateway(system.ApiAddress, port);
        var address = new Uri($"http://127.0.0.1:{port}");
        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        var user = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, user.AccessToken);
        var answer = string.Concat(Enumerable.Range(1, 40).Select(i => $"w{i:00} "));
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(answer, chunkSize: 4), TimeSpan.FromMilliseconds(60)));

        var (_, first) = await SseReader.OpenAsync(client, SseReader.Send(user.AccessToken, "a long answer, please"));
        var before = new List<SseEvent>();
        while (before.Count < 4 && await first.NextAsync(TestContext.Current.CancellationToken) is { } next)
        {
            before.Add(next);
        }

        await gateway.DisposeAsync(); // the gateway goes away mid-stream
        var cut = await ReadUntilCutAsync(first);
        before.AddRange(cut);
        Assert.DoesNotContain(before, e => e.Event is "turn.completed" or "turn.failed");
        var turnId = before.Single(e => e.Event == "turn.started").Data.GetProperty("turn_id").GetGuid();

        await using var again = StartGateway(system.ApiAddress, port); // back at the same address
        var (resumed, reader) = await SseReader.OpenAsync(client, SseReader.Resume(user.AccessToken, turnId, before[^1].Id));
        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
        var after = await reader.ReadAllAsync();

        var ids = before.Concat(after).Select(e => e.Id).ToList();
        Assert.Equal(Enumerable.Range(1, ids.Count), ids); // every event once, in order
        Assert.Equal("turn.completed", after[^1].Event);
        Assert.Contains(after, e => e.Event == "message.delta"); // the resume carried part of the answer, not only the end
        using var direct = new HttpClient { BaseAddress = system.ApiAddress };
        var (_, all) = await SseReader.OpenAsync(direct, SseReader.Resume(user.AccessToken, turnId, 0));
        Assert.Equal((await all.ReadAllAsync()).Select(e => (e.Id, e.Event)), before.Concat(after).Select(e => (e.Id, e.Event)));
        Assert.Equal(answer, string.Concat(before.Concat(after).Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString())));
    }

    /// <summary>The events that still came before the connection broke (the stream ends or throws).</summary>
    private static async Task<List<SseEvent>> ReadUntilCutAsync(SseReader reader)
    {
        var events = new List<SseEvent>();
        try
        {
            while (await reader.NextAsync(TestContext.Current.CancellationToken) is { } next)
            {
                events.Add(next);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
        }

        return events;
    }

    private static GatewayFactory StartGateway(Uri api, int port)
    {
        // Stopping gives open streams no grace: the gateway drops them, as a crash or a quick redeploy would.
        var gateway = new GatewayFactory(api).WithSetting("shutdownTimeoutSeconds", "0");
        gateway.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        gateway.StartServer();
        return gateway;
    }
}
