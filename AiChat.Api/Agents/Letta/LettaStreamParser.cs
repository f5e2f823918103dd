using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace AiChat.Api.Agents.Letta;

/// <summary>
/// Turns the server-sent events of one Letta send into <see cref="AgentEvent"/>s, ending with exactly one
/// <see cref="AgentEvent.Completed"/> or <see cref="AgentEvent.Failed"/>. Upstream failures become events, never exceptions.
/// </summary>
/// <param name="model">The model name reported with the turn's usage (Letta's usage statistics do not carry one).</param>
public sealed class LettaStreamParser(string model)
{
    /// <summary>The code of the event for a run Letta reports as cancelled; the runtime turns it into <see cref="AgentEvent.Cancelled"/>.</summary>
    public const string CancelledCode = "cancelled";

    private const string DefaultStopReason = "end_turn";

    private static readonly HashSet<string> FailedStopReasons = new(StringComparer.Ordinal)
    {
        "error", "llm_api_error", "invalid_llm_response", "invalid_tool_call",
    };

    private readonly StringBuilder text = new();
    private readonly Dictionary<string, PendingCall> calls = new(StringComparer.Ordinal);
    private readonly List<PendingCall> pending = [];
    private string? pendingMessageId;
    private string? assistantMessageId;
    private string? stopReason;

    /// <summary>True once the final event (Completed or Failed) has been produced; later input is ignored.</summary>
    public bool IsFinished { get; private set; }

    /// <summary>Reads a whole SSE body; a connection that breaks or ends early yields a final Failed event.</summary>
    public static async IAsyncEnumerable<AgentEvent> ParseAsync(Stream stream, string model, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var parser = new LettaStreamParser(model);
        var items = SseParser.Create(stream).EnumerateAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        var broken = false;
        try
        {
            while (!parser.IsFinished)
            {
                bool more;
                try
                {
                    more = await items.MoveNextAsync();
                }
                catch (IOException) when (!cancellationToken.IsCancellationRequested)
                {
                    broken = true;
                    more = false;
                }

                if (!more)
                {
                    break;
                }

                foreach (var item in parser.Read(items.Current.EventType, items.Current.Data))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            await items.DisposeAsync();
        }

        foreach (var item in parser.End(broken ? "The connection to Letta broke before the turn finished." : null))
        {
            yield return item;
        }
    }

    /// <summary>One server-sent event: its <c>event:</c> type (<c>message</c> when absent) and its <c>data:</c>.</summary>
    public IReadOnlyList<AgentEvent> Read(string eventType, string data)
    {
        if (IsFinished)
        {
            return [];
        }

        var events = new List<AgentEvent>();
        switch (eventType)
        {
            case "error":
                FlushCalls(events);
                events.Add(Finish(new AgentEvent.Failed("agent_error", ErrorMessage(data) ?? "Letta reported an error.")));
                return events;
            case "cancelled":
                FlushCalls(events);
                events.Add(Finish(new AgentEvent.Failed(CancelledCode, "The agent run was cancelled.")));
                return events;
        }

        if (data.Trim() == "[DONE]")
        {
            FlushCalls(events);
            events.Add(Finish(Done()));
            return events;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data);
        }
        catch (JsonException)
        {
            FlushCalls(events);
            events.Add(Finish(new AgentEvent.Failed("agent_protocol_error", "Letta sent a stream chunk that is not JSON.")));
            return events;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                FlushCalls(events);
                events.Add(Finish(new AgentEvent.Failed("agent_protocol_error", "Letta sent a stream chunk that is not a JSON object.")));
                return events;
            }

            Handle(root, events);
        }

        return events;
    }

    /// <summary>
    /// The end of the stream: a Failed event unless the turn already finished. A cancelled run's stream may close right
    /// after its <c>cancelled</c> stop reason, with no <c>[DONE]</c>.
    /// </summary>
    public IReadOnlyList<AgentEvent> End(string? reason = null)
    {
        if (IsFinished)
        {
            return [];
        }

        var events = new List<AgentEvent>();
        FlushCalls(events);
        events.Add(Finish(stopReason == "cancelled"
            ? Done()
            : new AgentEvent.Failed("agent_stream_ended", reason ?? "Letta's stream ended before the turn finished.")));
        return events;
    }

    private void Handle(JsonElement root, List<AgentEvent> events)
    {
        var type = String(root, "message_type");
        var id = String(root, "id");

        // Streamed tool calls arrive as argument fragments; a call is whole once another message starts.
        if (pending.Count > 0 && (type != "tool_call_message" || id != pendingMessageId))
        {
            FlushCalls(events);
        }

        switch (type)
        {
            case "assistant_message":
                OnAssistant(id, ContentText(root), events);
                break;
            case "reasoning_message" when String(root, "reasoning") is { Length: > 0 } reasoning:
                events.Add(new AgentEvent.ReasoningDelta(reasoning));
                break;
            case "tool_call_message":
                OnToolCall(id, root);
                break;
            case "tool_return_message":
                OnToolReturn(root, events);
                break;
            case "usage_statistics":
                events.Add(new AgentEvent.Usage(model, Int(root, "prompt_tokens"), Int(root, "completion_tokens"), null));
                break;
            case "stop_reason":
                stopReason = String(root, "stop_reason") ?? stopReason;
                break;
            case "error_message":
                events.Add(Finish(new AgentEvent.Failed("agent_error", MessageOf(root) ?? "Letta reported an error.")));
                break;
            case null when root.TryGetProperty("error", out _):
                events.Add(Finish(new AgentEvent.Failed("agent_error", MessageOf(root) ?? "Letta reported an error.")));
                break;
        }
    }

    private void OnAssistant(string? id, string chunk, List<AgentEvent> events)
    {
        if (chunk.Length == 0)
        {
            return;
        }

        // A second assistant message in one turn (e.g. before and after a tool) is a new paragraph of the same reply.
        if (text.Length > 0 && id is not null && assistantMessageId is not null && id != assistantMessageId)
        {
            text.Append("\n\n");
            events.Add(new AgentEvent.MessageDelta("\n\n"));
        }

        assistantMessageId = id ?? assistantMessageId;
        text.Append(chunk);
        events.Add(new AgentEvent.MessageDelta(chunk));
    }

    private void OnToolCall(string? id, JsonElement root)
    {
        pendingMessageId = id;
        var parts = root.TryGetProperty("tool_calls", out var many) && many.ValueKind == JsonValueKind.Array && many.GetArrayLength() > 0
            ? many.EnumerateArray().ToList()
            : root.TryGetProperty("tool_calls", out var delta) && delta.ValueKind == JsonValueKind.Object
                ? [delta]
                : root.TryGetProperty("tool_call", out var single) && single.ValueKind == JsonValueKind.Object
                    ? [single]
                    : [];
        for (var index = 0; index < parts.Count; index++)
        {
            if (pending.Count <= index)
            {
                pending.Add(new PendingCall());
            }

            var call = pending[index];
            call.Name ??= String(parts[index], "name");
            call.Arguments.Append(String(parts[index], "arguments"));
            call.Id ??= String(parts[index], "tool_call_id");
        }
    }

    private void OnToolReturn(JsonElement root, List<AgentEvent> events)
    {
        var returns = root.TryGetProperty("tool_returns", out var many) && many.ValueKind == JsonValueKind.Array && many.GetArrayLength() > 0
            ? many.EnumerateArray().ToList()
            : [root];
        foreach (var result in returns)
        {
            var call = String(result, "tool_call_id") is { } callId && calls.TryGetValue(callId, out var known) ? known : null;
            var name = call?.Name ?? "unknown";
            var ok = String(result, "status") == "success";
            events.Add(new AgentEvent.ToolResult(name, ok));
            if (ok && IsMemoryTool(name) && call is not null && LabelOf(call.Arguments.ToString()) is { } label)
            {
                events.Add(new AgentEvent.MemoryUpdated(label));
            }
        }
    }

    private void FlushCalls(List<AgentEvent> events)
    {
        foreach (var call in pending)
        {
            events.Add(new AgentEvent.ToolCall(call.Name ?? "unknown", call.Arguments.ToString()));
            if (call.Id is not null)
            {
                calls[call.Id] = call;
            }
        }

        pending.Clear();
        pendingMessageId = null;
    }

    private AgentEvent Done() => stopReason switch
    {
        "cancelled" => new AgentEvent.Failed(CancelledCode, "The agent run was cancelled."),
        { } reason when FailedStopReasons.Contains(reason) => new AgentEvent.Failed("agent_error", $"The agent stopped with '{reason}'."),
        _ => new AgentEvent.Completed(text.ToString(), stopReason ?? DefaultStopReason),
    };

    private AgentEvent Finish(AgentEvent last)
    {
        IsFinished = true;
        return last;
    }

    private static bool IsMemoryTool(string name) =>
        name is "core_memory_append" or "core_memory_replace" || name.StartsWith("memory_", StringComparison.Ordinal);

    private static string? LabelOf(string arguments)
    {
        try
        {
            using var document = JsonDocument.Parse(arguments);
            return document.RootElement.ValueKind == JsonValueKind.Object && String(document.RootElement, "label") is { Length: > 0 } label ? label : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // Content is a string, or a list of parts of which the text ones count.
    private static string ContentText(JsonElement root)
    {
        if (!root.TryGetProperty("content", out var content))
        {
            return "";
        }

        return content.ValueKind switch
        {
            JsonValueKind.String => content.GetString() ?? "",
            JsonValueKind.Array => string.Concat(content.EnumerateArray()
                .Where(part => part.ValueKind == JsonValueKind.Object && String(part, "type") is null or "text")
                .Select(part => String(part, "text"))),
            _ => "",
        };
    }

    private static string? ErrorMessage(string data)
    {
        try
        {
            using var document = JsonDocument.Parse(data);
            return document.RootElement.ValueKind == JsonValueKind.Object ? MessageOf(document.RootElement) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? MessageOf(JsonElement root) =>
        String(root, "message")
        ?? String(root, "detail")
        ?? (root.TryGetProperty("error", out var error)
            ? error.ValueKind == JsonValueKind.Object ? String(error, "message") : error.ValueKind == JsonValueKind.String ? error.GetString() : null
            : null);

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static int Int(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number : 0;

    private sealed class PendingCall
    {
        public string? Id { get; set; }

        public string? Name { get; set; }

        public StringBuilder Arguments { get; } = new();
    }
}
