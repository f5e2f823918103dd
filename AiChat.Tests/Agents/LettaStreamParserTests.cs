using System.Text;
using AiChat.Api.Agents;
using AiChat.Api.Agents.Letta;

namespace AiChat.Tests.Agents;

/// <summary>Letta's SSE wire format (contracts/letta.md, "Messages") turned into agent events, with no server involved.</summary>
[Trait("Category", "Letta")]
public sealed class LettaStreamParserTests
{
    private const string Model = "gpt-4o-mini";

    [Fact]
    public async Task ChunksSharingAnIdAreDeltasOfOneMessageAndCompletedCarriesTheirWholeText()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-b2","date":"2026-05-01T10:00:01Z","message_type":"assistant_message","run_id":"run-1","content":"Hel"}

            data: {"id":"message-b2","date":"2026-05-01T10:00:01Z","message_type":"assistant_message","run_id":"run-1","content":"lo"}

            data: {"id":"message-b2","date":"2026-05-01T10:00:01Z","message_type":"assistant_message","run_id":"run-1","content":"!"}

            data: {"message_type":"stop_reason","stop_reason":"end_turn"}

            data: [DONE]

            """);

        Assert.Equal(
            [
                new AgentEvent.MessageDelta("Hel"),
                new AgentEvent.MessageDelta("lo"),
                new AgentEvent.MessageDelta("!"),
                new AgentEvent.Completed("Hello!", "end_turn"),
            ],
            events);
    }

    [Fact]
    public async Task TheContractsExampleStreamBecomesTheWholeTurnInOrder()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-a1","date":"2026-05-01T10:00:00Z","message_type":"reasoning_message","run_id":"run-1","reasoning":"User greets"}

            data: {"id":"message-b2","date":"2026-05-01T10:00:01Z","message_type":"assistant_message","run_id":"run-1","content":"Hel"}

            data: {"id":"message-b2","date":"2026-05-01T10:00:01Z","message_type":"assistant_message","run_id":"run-1","content":"lo!"}

            data: {"id":"message-c3","message_type":"tool_call_message","tool_call":{"name":"core_memory_append","arguments":"{\"label\":\"human\",\"content\":\"Likes tea\"}","tool_call_id":"call-1"}}

            data: {"id":"message-d4","message_type":"tool_return_message","tool_return":"None","status":"success","tool_call_id":"call-1"}

            data: {"message_type":"stop_reason","stop_reason":"end_turn"}

            data: {"message_type":"usage_statistics","completion_tokens":42,"prompt_tokens":3120,"total_tokens":3162,"step_count":2}

            data: [DONE]

            """);

        Assert.Equal(
            [
                new AgentEvent.ReasoningDelta("User greets"),
                new AgentEvent.MessageDelta("Hel"),
                new AgentEvent.MessageDelta("lo!"),
                new AgentEvent.ToolCall("core_memory_append", """{"label":"human","content":"Likes tea"}"""),
                new AgentEvent.ToolResult("core_memory_append", true),
                new AgentEvent.MemoryUpdated("human"),
                new AgentEvent.Usage(Model, 3120, 42, null),
                new AgentEvent.Completed("Hello!", "end_turn"),
            ],
            events);
    }

    [Fact]
    public async Task ReasoningChunksBecomeReasoningDeltas()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-a1","message_type":"reasoning_message","reasoning":"The user "}

            data: {"id":"message-a1","message_type":"reasoning_message","reasoning":"greets me."}

            data: [DONE]

            """);

        Assert.Equal(
            [new AgentEvent.ReasoningDelta("The user "), new AgentEvent.ReasoningDelta("greets me."), new AgentEvent.Completed("", "end_turn")],
            events);
    }

    [Theory]
    [InlineData("core_memory_replace", """{"label":"persona","old_content":"warm","new_content":"kind"}""", "persona")]
    [InlineData("memory_insert", """{"label":"human","new_str":"Has a cat"}""", "human")]
    [InlineData("memory_rethink", """{"label":"notes","new_memory":"All new"}""", "notes")]
    public async Task ASuccessfulMemoryToolNamesTheBlockItChanged(string tool, string arguments, string label)
    {
        var events = await ParseAsync(ToolTurn(tool, arguments, "success"));

        Assert.Equal(
            [
                new AgentEvent.ToolCall(tool, arguments),
                new AgentEvent.ToolResult(tool, true),
                new AgentEvent.MemoryUpdated(label),
                new AgentEvent.Completed("", "end_turn"),
            ],
            events);
    }

    [Fact]
    public async Task AFailedMemoryToolChangesNoBlock()
    {
        var events = await ParseAsync(ToolTurn("core_memory_append", """{"label":"human","content":"x"}""", "error"));

        Assert.Contains(new AgentEvent.ToolResult("core_memory_append", false), events);
        Assert.DoesNotContain(events, e => e is AgentEvent.MemoryUpdated);
    }

    [Theory]
    [InlineData("archival_memory_insert", """{"content":"Ana likes tea"}""")]
    [InlineData("web_search", """{"label":"human","query":"tea"}""")]
    [InlineData("memory_finish_edits", """{}""")]
    public async Task OtherToolsAndMemoryToolsWithoutALabelChangeNoBlock(string tool, string arguments)
    {
        var events = await ParseAsync(ToolTurn(tool, arguments, "success"));

        Assert.Contains(new AgentEvent.ToolResult(tool, true), events);
        Assert.DoesNotContain(events, e => e is AgentEvent.MemoryUpdated);
    }

    [Fact]
    public async Task AToolCallStreamedInFragmentsIsReportedOnceWhole()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-c3","message_type":"tool_call_message","tool_call":{"name":"core_memory_append","arguments":"{\"label\":","tool_call_id":"call-1"}}

            data: {"id":"message-c3","message_type":"tool_call_message","tool_call":{"arguments":"\"human\",\"content\":"}}

            data: {"id":"message-c3","message_type":"tool_call_message","tool_call":{"arguments":"\"Likes tea\"}"}}

            data: {"id":"message-d4","message_type":"tool_return_message","tool_return":"None","status":"success","tool_call_id":"call-1"}

            data: [DONE]

            """);

        Assert.Equal(
            [
                new AgentEvent.ToolCall("core_memory_append", """{"label":"human","content":"Likes tea"}"""),
                new AgentEvent.ToolResult("core_memory_append", true),
                new AgentEvent.MemoryUpdated("human"),
                new AgentEvent.Completed("", "end_turn"),
            ],
            events);
    }

    [Fact]
    public async Task ToolReturnsAreMatchedToTheirCallsById()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-c1","message_type":"tool_call_message","tool_call":{"name":"archival_memory_search","arguments":"{}","tool_call_id":"call-a"}}

            data: {"id":"message-c2","message_type":"tool_call_message","tool_call":{"name":"conversation_search","arguments":"{}","tool_call_id":"call-b"}}

            data: {"id":"message-r2","message_type":"tool_return_message","tool_return":"[]","status":"error","tool_call_id":"call-b"}

            data: {"id":"message-r1","message_type":"tool_return_message","tool_return":"[]","status":"success","tool_call_id":"call-a"}

            data: [DONE]

            """);

        Assert.Equal(
            [
                new AgentEvent.ToolCall("archival_memory_search", "{}"),
                new AgentEvent.ToolCall("conversation_search", "{}"),
                new AgentEvent.ToolResult("conversation_search", false),
                new AgentEvent.ToolResult("archival_memory_search", true),
                new AgentEvent.Completed("", "end_turn"),
            ],
            events);
    }

    [Fact]
    public async Task UsageStatisticsBecomeUsageForTheModel()
    {
        var events = await ParseAsync(
            """
            data: {"message_type":"usage_statistics","completion_tokens":7,"prompt_tokens":1200,"total_tokens":1207,"step_count":1}

            data: [DONE]

            """);

        Assert.Equal([new AgentEvent.Usage(Model, 1200, 7, null), new AgentEvent.Completed("", "end_turn")], events);
    }

    [Fact]
    public async Task TheStopReasonIsRememberedForCompleted()
    {
        var events = await ParseAsync(
            """
            data: {"id":"m1","message_type":"assistant_message","content":"Enough steps."}

            data: {"message_type":"stop_reason","stop_reason":"max_steps"}

            data: [DONE]

            """);

        Assert.Equal(new AgentEvent.Completed("Enough steps.", "max_steps"), events[^1]);
    }

    [Fact]
    public async Task AnErrorMidStreamEndsTheTurnWithFailed()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-b2","message_type":"assistant_message","content":"Partial"}

            data: {"message_type":"stop_reason","stop_reason":"llm_api_error"}

            event: error
            data: {"message_type":"error_message","error_type":"internal_error","message":"The LLM provider timed out"}

            """);

        Assert.Equal([new AgentEvent.MessageDelta("Partial"), new AgentEvent.Failed("agent_error", "The LLM provider timed out")], events);
    }

    [Fact]
    public async Task ACancelledEventEndsTheTurnAsCancelled()
    {
        var events = await ParseAsync(
            """
            data: {"id":"message-b2","message_type":"assistant_message","content":"Let me"}

            event: cancelled
            data: {"message_type":"stop_reason","stop_reason":"cancelled"}

            """);

        Assert.Equal(new AgentEvent.MessageDelta("Let me"), events[0]);
        Assert.Equal("cancelled", Assert.IsType<AgentEvent.Failed>(events[^1]).Code);
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public async Task AStreamThatClosesRightAfterACancelledStopReasonEndsTheTurnAsCancelled()
    {
        // A foreground cancel (contracts/letta-conversations.md §4 d): Python's json.dumps spacing, then the stream closes with no [DONE].
        var events = await ParseAsync(
            """
            data: {"id":"message-b2","message_type":"assistant_message","content":"Let me"}

            data: {"message_type": "stop_reason", "stop_reason": "cancelled"}

            """);

        Assert.Equal(
            [new AgentEvent.MessageDelta("Let me"), new AgentEvent.Failed(LettaStreamParser.CancelledCode, "The agent run was cancelled.")],
            events);
    }

    [Fact]
    public async Task DoneAfterAnErrorStopReasonIsAFailureNotACompletion()
    {
        var events = await ParseAsync(
            """
            data: {"message_type":"stop_reason","stop_reason":"llm_api_error"}

            data: [DONE]

            """);

        Assert.Equal("agent_error", Assert.IsType<AgentEvent.Failed>(Assert.Single(events)).Code);
    }

    [Fact]
    public async Task PingsCommentsAndUnknownMessageTypesAreIgnored()
    {
        var events = await ParseAsync(
            """
            : keep-alive

            data: {"message_type":"ping","id":"ping-1","date":"2026-05-01T10:00:00Z"}

            data: {"id":"h1","message_type":"hidden_reasoning_message","state":"omitted"}

            data: {"id":"x1","message_type":"something_new","payload":42}

            data: {"id":"m1","message_type":"assistant_message","content":"Hi"}

            data: [DONE]

            """);

        Assert.Equal([new AgentEvent.MessageDelta("Hi"), new AgentEvent.Completed("Hi", "end_turn")], events);
    }

    [Fact]
    public async Task AMalformedChunkEndsTheTurnWithAProtocolErrorInsteadOfThrowing()
    {
        var events = await ParseAsync(
            """
            data: {"id":"m1","message_type":"assistant_message","content":"Hi"}

            data: {"id":"m1","message_type":"assistant_mes

            data: {"id":"m1","message_type":"assistant_message","content":" there"}

            data: [DONE]

            """);

        Assert.Equal(new AgentEvent.MessageDelta("Hi"), events[0]);
        Assert.Equal("agent_protocol_error", Assert.IsType<AgentEvent.Failed>(events[1]).Code);
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public async Task AChunkThatIsJsonButNotAnObjectIsAProtocolError()
    {
        var events = await ParseAsync("data: [1, 2, 3]\n\n");

        Assert.Equal("agent_protocol_error", Assert.IsType<AgentEvent.Failed>(Assert.Single(events)).Code);
    }

    [Fact]
    public async Task AStreamThatEndsWithoutDoneOrAnErrorFails()
    {
        var events = await ParseAsync(
            """
            data: {"id":"m1","message_type":"assistant_message","content":"Hi"}

            data: {"message_type":"stop_reason","stop_reason":"end_turn"}

            """);

        Assert.Equal([new AgentEvent.MessageDelta("Hi"), events[^1]], events);
        Assert.Equal("agent_stream_ended", Assert.IsType<AgentEvent.Failed>(events[^1]).Code);
    }

    [Fact]
    public async Task AConnectionThatBreaksMidStreamFailsInsteadOfThrowing()
    {
        var start = "data: {\"id\":\"m1\",\"message_type\":\"assistant_message\",\"content\":\"Hi\"}\n\n"u8.ToArray();
        await using var stream = new BreakingStream(start);

        var events = await CollectAsync(LettaStreamParser.ParseAsync(stream, Model, TestContext.Current.CancellationToken));

        Assert.Equal(new AgentEvent.MessageDelta("Hi"), events[0]);
        Assert.Equal("agent_stream_ended", Assert.IsType<AgentEvent.Failed>(events[1]).Code);
        Assert.Equal(2, events.Count);
    }

    [Fact]
    public async Task ContentGivenAsPartsIsReadAsText()
    {
        var events = await ParseAsync(
            """
            data: {"id":"m1","message_type":"assistant_message","content":[{"type":"text","text":"Hello"},{"type":"text","text":" Ana"}]}

            data: [DONE]

            """);

        Assert.Equal([new AgentEvent.MessageDelta("Hello Ana"), new AgentEvent.Completed("Hello Ana", "end_turn")], events);
    }

    [Fact]
    public async Task TwoAssistantMessagesInOneTurnAreParagraphsOfOneReplyAndTheDeltasStillAddUp()
    {
        var events = await ParseAsync(
            """
            data: {"id":"m1","message_type":"assistant_message","content":"Let me note that."}

            data: {"id":"c1","message_type":"tool_call_message","tool_call":{"name":"core_memory_append","arguments":"{\"label\":\"human\",\"content\":\"Likes tea\"}","tool_call_id":"call-1"}}

            data: {"id":"r1","message_type":"tool_return_message","tool_return":"None","status":"success","tool_call_id":"call-1"}

            data: {"id":"m2","message_type":"assistant_message","content":"Done."}

            data: [DONE]

            """);

        var completed = Assert.IsType<AgentEvent.Completed>(events[^1]);
        Assert.Equal("Let me note that.\n\nDone.", completed.Text);
        Assert.Equal(completed.Text, string.Concat(events.OfType<AgentEvent.MessageDelta>().Select(delta => delta.Text)));
    }

    [Fact]
    public void NothingIsReadAfterTheTurnEnded()
    {
        var parser = new LettaStreamParser(Model);

        Assert.Single(parser.Read("message", "[DONE]"));
        Assert.True(parser.IsFinished);
        Assert.Empty(parser.Read("message", """{"id":"m1","message_type":"assistant_message","content":"late"}"""));
        Assert.Empty(parser.End());
    }

    private static string ToolTurn(string tool, string arguments, string status)
    {
        var escaped = arguments.Replace("\"", "\\\"", StringComparison.Ordinal);
        return $$$"""
            data: {"id":"c1","message_type":"tool_call_message","tool_call":{"name":"{{{tool}}}","arguments":"{{{escaped}}}","tool_call_id":"call-1"}}

            data: {"id":"r1","message_type":"tool_return_message","tool_return":"None","status":"{{{status}}}","tool_call_id":"call-1"}

            data: [DONE]

            """;
    }

    private static async Task<List<AgentEvent>> ParseAsync(string sse)
    {
        // A raw string drops its last line break; the blank line that dispatches the last event is put back.
        await using var stream = new MemoryStream(Encoding.UTF8.GetBytes(sse.ReplaceLineEndings("\n") + "\n"));
        return await CollectAsync(LettaStreamParser.ParseAsync(stream, Model, TestContext.Current.CancellationToken));
    }

    private static async Task<List<AgentEvent>> CollectAsync(IAsyncEnumerable<AgentEvent> events)
    {
        var list = new List<AgentEvent>();
        await foreach (var item in events)
        {
            list.Add(item);
        }

        return list;
    }

    /// <summary>Serves some bytes, then fails the way a dropped HTTP connection does.</summary>
    private sealed class BreakingStream(byte[] start) : Stream
    {
        private int position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (position >= start.Length)
            {
                throw new IOException("The response ended prematurely.");
            }

            var n = Math.Min(count, start.Length - position);
            Array.Copy(start, position, buffer, offset, n);
            position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
