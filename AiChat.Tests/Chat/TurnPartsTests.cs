using System.Text.Json;
using System.Threading.Channels;
using AiChat.Api.Agents;
using AiChat.Api.Chat;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Chat;

/// <summary>The pieces of a turn on their own, without a server: batching, event shapes, the SSE frame, the queue's places.</summary>
public sealed class TurnPartsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EventsThatArriveWithinTheWindowGoOutAsOneBatch()
    {
        var source = Channel.CreateUnbounded<AgentEvent>();
        source.Writer.TryWrite(new AgentEvent.MessageDelta("Hel"));
        source.Writer.TryWrite(new AgentEvent.MessageDelta("lo"));
        source.Writer.TryWrite(new AgentEvent.Usage("m", 3, 2, 10));

        await using var batches = DeltaCoalescer.BatchAsync(source.Reader.ReadAllAsync(Ct), TimeSpan.FromMinutes(5), Ct).GetAsyncEnumerator(Ct);
        var first = batches.MoveNextAsync().AsTask();
        source.Writer.TryWrite(new AgentEvent.Completed("Hello", "end_turn"));

        Assert.True(await first);
        Assert.Equal(
            [new AgentEvent.MessageDelta("Hel"), new AgentEvent.MessageDelta("lo"), new AgentEvent.Usage("m", 3, 2, 10), new AgentEvent.Completed("Hello", "end_turn")],
            batches.Current);
        Assert.False(await batches.MoveNextAsync());
    }

    [Fact]
    public async Task ABatchGoesOutWhenItsWindowHasPassedWithoutWaitingForMore()
    {
        var source = Channel.CreateUnbounded<AgentEvent>();
        source.Writer.TryWrite(new AgentEvent.MessageDelta("Hel"));

        await using var batches = DeltaCoalescer.BatchAsync(source.Reader.ReadAllAsync(Ct), TimeSpan.FromMilliseconds(20), Ct).GetAsyncEnumerator(Ct);

        // Nothing more arrives: the pending delta is flushed once the window is over, not held until the turn ends.
        Assert.True(await batches.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct));
        Assert.Equal([new AgentEvent.MessageDelta("Hel")], batches.Current);
        source.Writer.TryWrite(new AgentEvent.Cancelled());
        Assert.True(await batches.MoveNextAsync());
        Assert.Equal([new AgentEvent.Cancelled()], batches.Current);
        Assert.False(await batches.MoveNextAsync());
    }

    [Fact]
    public async Task AZeroWindowPassesEveryEventOnAlone()
    {
        var batches = new List<IReadOnlyList<AgentEvent>>();
        await foreach (var batch in DeltaCoalescer.BatchAsync(Events(new AgentEvent.MessageDelta("a"), new AgentEvent.MessageDelta("b"), new AgentEvent.Failed("x", "y")), TimeSpan.Zero, Ct))
        {
            batches.Add(batch);
        }

        Assert.Equal([1, 1, 1], batches.Select(b => b.Count));
        Assert.IsType<AgentEvent.Failed>(batches[^1].Single());
    }

    [Fact]
    public void EventDataIsSnakeCaseWithTheContractsFields()
    {
        var usage = TurnEvents.From(4, new AgentEvent.Usage("gpt-4o-mini", 120, 30, 1_500, 9_999_998_500))!;
        Assert.Equal((4, "usage"), (usage.Seq, usage.Event));
        Assert.Equal("""{"prompt_tokens":120,"completion_tokens":30,"cost_usd":0.0000015,"model":"gpt-4o-mini","budget":{"remaining_usd":9.9999985}}""", usage.Data);

        var call = TurnEvents.From(5, new AgentEvent.ToolCall("core_memory_append", """{"label":"human","content":"Likes tea"}"""))!;
        Assert.Equal("""{"name":"core_memory_append","arguments":{"label":"human","content":"Likes tea"}}""", call.Data);

        Assert.Null(TurnEvents.From(6, new AgentEvent.Completed("done", "end_turn")));
    }

    [Fact]
    public void AFailureIsAProblemDocumentWithItsFigures()
    {
        var turnId = Guid.NewGuid();
        var failure = new TurnFailure(402, "budget_exceeded", "The budget is used up.", new Dictionary<string, object?> { ["remaining_usd"] = 0.5m });

        var problem = JsonDocument.Parse(TurnEvents.Problem(9, turnId, failure).Data).RootElement;

        Assert.Equal("https://aichat.dev/problems/budget-exceeded", problem.GetProperty("type").GetString());
        Assert.Equal("Payment Required", problem.GetProperty("title").GetString());
        Assert.Equal(402, problem.GetProperty("status").GetInt32());
        Assert.Equal("budget_exceeded", problem.GetProperty("code").GetString());
        Assert.Equal(turnId, problem.GetProperty("turn_id").GetGuid());
        Assert.Equal(0.5m, problem.GetProperty("remaining_usd").GetDecimal());
    }

    [Fact]
    public void TheStoredFailureReadsBackAsItWasWritten()
    {
        var figures = JsonSerializer.Serialize(new Dictionary<string, object?> { ["required_usd"] = 0.25m }, TurnEvents.Json);
        var turn = new TurnRecord { Status = TurnStatus.Failed, ErrorCode = "budget_exceeded", ErrorStatus = 402, ErrorDetail = "No budget.", ErrorFigures = figures };

        var failure = turn.Failure!;

        Assert.Equal((402, "budget_exceeded", "No budget."), (failure.Status, failure.Code, failure.Detail));
        Assert.Equal(0.25m, ((JsonElement)failure.Figures!["required_usd"]!).GetDecimal());
        Assert.Null(new TurnRecord { Status = TurnStatus.Completed }.Failure);
    }

    [Fact]
    public async Task AnSseFrameCarriesTheEventsIdNameAndData()
    {
        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;
        var sse = new SseWriter(context.Response);
        var turnId = Guid.NewGuid();

        await sse.StartAsync(turnId, Ct);
        await sse.WriteAsync(new StoredEvent { Seq = 7, Event = "message.delta", Data = """{"text":"Hel"}""" }, Ct);
        await sse.KeepAliveAsync(Ct);

        Assert.Equal("text/event-stream", context.Response.ContentType);
        Assert.Equal("no-cache", context.Response.Headers.CacheControl.ToString());
        Assert.Equal(turnId.ToString(), context.Response.Headers["X-Turn-Id"].ToString());
        Assert.Equal("id: 7\nevent: message.delta\ndata: {\"text\":\"Hel\"}\n\n: keep-alive\n\n", System.Text.Encoding.UTF8.GetString(body.ToArray()));
    }

    [Fact]
    public void TheQueueHasAsManyPlacesAsItsCapacity()
    {
        var queue = new TurnQueue(null!, Options.Create(new ChatOptions { QueueCapacity = 2 }), NullLogger<TurnQueue>.Instance);

        Assert.True(queue.TryReserve());
        Assert.True(queue.TryReserve());
        Assert.False(queue.TryReserve());
        queue.Unreserve();
        Assert.True(queue.TryReserve());
    }

    private static async IAsyncEnumerable<AgentEvent> Events(params AgentEvent[] events)
    {
        foreach (var agentEvent in events)
        {
            await Task.Yield();
            yield return agentEvent;
        }
    }
}
