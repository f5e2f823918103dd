using AiChat.Api.Data;
using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.Net;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace AiChat.Tests.Chat;

/// <summary>
/// Issue 9: one trace per turn. Tracing is listened to process-wide, so these run alone (another test's spans would
/// mix in). On both stores: each store's client adds spans of its own, which must hang in the same tree.
/// </summary>
[Collection(nameof(TurnTraceTests))]
[CollectionDefinition(nameof(TurnTraceTests), DisableParallelization = true)]
[Trait("Category", "Chat")]
public sealed class TurnTraceTests(PostgresServer postgres)
{
    private const string ExtensionsAiSource = "Experimental.Microsoft.Extensions.AI";

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnsModelCallsAndWorkAreInTheTraceOfTheRequestThatStartedIt(StoreProvider provider)
    {
        var spans = new Spans();
        using var open = new OpenSpans(spans);
        await using var api = await new ApiFactory()
            .WithSetting("Chat:RecoveryInterval", "01:00:00")
            .WithSetting("Chat:HeartbeatInterval", "01:00:00")
            .WithServices(services => services.AddOpenTelemetry().WithTracing(tracing => tracing.AddInMemoryExporter(spans)))
            .OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        // The caller's own trace context, as the gateway would pass it: the request's server span is its child.
        var callerTrace = ActivityTraceId.CreateRandom();
        var callerSpan = ActivitySpanId.CreateRandom();
        var request = ChatTests.Json(SseReader.Send(pair.AccessToken, "my name is Ana"));
        request.Headers.Add("traceparent", $"00-{callerTrace}-{callerSpan}-01");
        var sentAt = DateTime.UtcNow;
        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        var (server, turnSpans, all) = await WaitForTurnAsync(spans, open, callerTrace, sentAt);
        TestContext.Current.TestOutputHelper?.WriteLine(Describe(all, server));

        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal(callerSpan, server.ParentSpanId);
        Assert.Equal("/api/v1/chat/message", server.GetTagItem("http.route"));
        // The offline model calls the memory tool, then answers: two model calls; then the conversation's title: a third.
        Assert.Equal(3, turnSpans.Count(span => span.Source.Name == ExtensionsAiSource && span.OperationName.StartsWith("chat", StringComparison.Ordinal)));
        var outside = turnSpans.Where(span => !InRequest(span, server, all)).ToList();
        Assert.True(outside.Count == 0,
            $"{outside.Count} of the turn's {turnSpans.Count} spans are neither descendants of the request's span ({server.TraceId}/{server.SpanId}) nor linked to it:\n"
            + string.Join("\n", outside.Select(Line)));
    }

    /// <summary>Waits until the request's server span, the turn's three model calls, and every span of the turn have ended.</summary>
    private static async Task<(Activity Server, List<Activity> Turn, Activity[] All)> WaitForTurnAsync(Spans spans, OpenSpans open, ActivityTraceId callerTrace, DateTime sentAt)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var all = spans.Snapshot();
            var server = all.FirstOrDefault(span => span.TraceId == callerTrace && span.Kind == ActivityKind.Server);
            var turn = all.Where(span => span.StartTimeUtc >= sentAt && IsTurnWork(span.Source.Name)).ToList();
            if (server is not null && open.Count == 0 && turn.Count(span => span.Source.Name == ExtensionsAiSource) >= 3)
            {
                return (server, turn, all);
            }

            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero && await spans.EndedAsync(left),
                $"the turn's spans did not all end in time: server span {(server is null ? "missing" : "seen")}, still open: [{string.Join(", ", open.Names)}], ended:\n"
                + string.Join("\n", all.Select(Line)));
        }
    }

    private static bool IsTurnWork(string source) => source == ExtensionsAiSource || source.StartsWith("AiChat.", StringComparison.Ordinal);

    /// <summary>The span or one of its ancestors is the request's span, or is linked to it.</summary>
    private static bool InRequest(Activity span, Activity server, Activity[] all)
    {
        for (var current = span; current is not null; current = all.FirstOrDefault(parent => parent.TraceId == current.TraceId && parent.SpanId == current.ParentSpanId))
        {
            if (current.TraceId == server.TraceId && current.SpanId == server.SpanId)
            {
                return true;
            }

            if (current.Links.Any(link => link.Context.TraceId == server.TraceId && link.Context.SpanId == server.SpanId))
            {
                return true;
            }
        }

        return false;
    }

    private static string Line(Activity span) =>
        $"    {span.Source.Name} '{span.DisplayName}' trace {span.TraceId} span {span.SpanId} parent {(span.ParentSpanId == default ? "none" : span.ParentSpanId.ToString())}"
        + (span.Links.Any() ? $" links [{string.Join(", ", span.Links.Select(link => $"{link.Context.TraceId}/{link.Context.SpanId}"))}]" : "");

    private static string Describe(Activity[] all, Activity server) =>
        $"request span: {server.TraceId}/{server.SpanId}\n" + string.Join("\n", all.Select(Line));

    /// <summary>The in-memory exporter's list, written from the exporting thread and read from the test's.</summary>
    private sealed class Spans : Collection<Activity>
    {
        private readonly Lock _lock = new();
        private readonly SemaphoreSlim _ended = new(0);

        /// <summary>Waits until a span ends or is exported: false when none did in time.</summary>
        public Task<bool> EndedAsync(TimeSpan timeout) => _ended.WaitAsync(timeout, TestContext.Current.CancellationToken);

        public void Ended() => _ended.Release();

        public Activity[] Snapshot()
        {
            lock (_lock)
            {
                return [.. Items];
            }
        }

        protected override void InsertItem(int index, Activity item)
        {
            lock (_lock)
            {
                base.InsertItem(index, item);
            }

            Ended();
        }
    }

    /// <summary>The turn's spans started and not yet ended (the exporter sees a span only when it ends).</summary>
    private sealed class OpenSpans : IDisposable
    {
        private readonly ConcurrentDictionary<Activity, byte> _open = new();
        private readonly ActivityListener _listener;

        public OpenSpans(Spans spans)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => IsTurnWork(source.Name),
                // Only watches: whether a span is recorded is the API's tracer's choice.
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.None,
                ActivityStarted = activity => _open.TryAdd(activity, 0),
                ActivityStopped = activity =>
                {
                    _open.TryRemove(activity, out _);
                    spans.Ended();
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public int Count => _open.Count;

        public IEnumerable<string> Names => _open.Keys.Select(activity => $"{activity.Source.Name} '{activity.DisplayName}'");

        public void Dispose() => _listener.Dispose();
    }
}
