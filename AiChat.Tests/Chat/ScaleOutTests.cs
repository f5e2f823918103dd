using System.Net;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Chat;

/// <summary>
/// Two API processes on one Postgres (what <c>--Parameters:api-replicas 2</c> runs): a turn run by one is followed live
/// from the other, woken by the store's signals (<c>LISTEN/NOTIFY</c>) rather than by polling, with no gap or duplicate.
/// </summary>
[Trait("Category", "Chat")]
public sealed class ScaleOutTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AStreamStartedOnOneInstanceResumesOnTheOtherWokenBySignalsWithNoGapOrDuplicate()
    {
        await using var replicas = await ApiReplicas.StartAsync(postgres, new Dictionary<string, string>
        {
            ["Llm:Offline:WordDelay"] = "00:00:00.1",
            // A follower of the other instance's turn polls only every ten minutes: anything sooner came by a signal.
            ["Chat:SignalledPollInterval"] = "00:10:00",
        });
        using var one = replicas.First.Client();
        using var other = replicas.Second.Client();
        var pair = await one.RegisterAsync();

        var (response, running) = await SseReader.OpenAsync(one, SseReader.Send(pair.AccessToken, "Hello there, how are you today?"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var started = (await running.NextAsync(Ct))!;
        Assert.Equal("turn.started", started.Event);
        var turnId = started.Data.GetProperty("turn_id").GetGuid();
        var (resumed, follower) = await SseReader.OpenAsync(other, SseReader.Resume(pair.AccessToken, turnId, started.Id));
        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);

        var followed = await follower.ReadAllAsync(TimeSpan.FromSeconds(30));
        var streamed = await running.ReadAllAsync(TimeSpan.FromSeconds(30));

        Assert.Equal("turn.completed", followed[^1].Event);
        Assert.True(followed.Count(e => e.Event == "message.delta") > 3, $"{followed.Count} events followed");
        Assert.Equal(Enumerable.Range(started.Id + 1, followed.Count), followed.Select(e => e.Id));
        Assert.Equal(streamed.Select(e => (e.Id, e.Event, e.Data.GetRawText())), followed.Select(e => (e.Id, e.Event, e.Data.GetRawText())));
    }
}
