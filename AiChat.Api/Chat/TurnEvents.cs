using System.Text.Json;
using System.Text.Json.Nodes;
using AiChat.Api.Agents;

namespace AiChat.Api.Chat;

/// <summary>The stream events of DESIGN §3.1 and their JSON data (snake_case).</summary>
public static class TurnEvents
{
    public const string Started = "turn.started";
    public const string MessageDelta = "message.delta";
    public const string ReasoningDelta = "reasoning.delta";
    public const string ToolCall = "tool.call";
    public const string ToolResult = "tool.result";
    public const string MemoryUpdated = "memory.updated";
    public const string Usage = "usage";
    public const string Completed = "turn.completed";
    public const string Failed = "turn.failed";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // Event data goes to an event stream, never into HTML; no need to escape quotes and apostrophes.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static bool IsTerminal(string @event) => @event is Completed or Failed;

    public static StoredEvent Create(int seq, string @event, object data) =>
        new() { Seq = seq, Event = @event, Data = JsonSerializer.Serialize(data, Json) };

    /// <summary>The stored form of an agent event, or null for the ones the turn handles itself (completion, failure).</summary>
    public static StoredEvent? From(int seq, AgentEvent agentEvent, object? budget = null) => agentEvent switch
    {
        AgentEvent.MessageDelta delta => Create(seq, MessageDelta, new { text = delta.Text }),
        AgentEvent.ReasoningDelta reasoning => Create(seq, ReasoningDelta, new { text = reasoning.Text }),
        AgentEvent.ToolCall call => Create(seq, ToolCall, new { name = call.Name, arguments = ParseArguments(call.Arguments) }),
        AgentEvent.ToolResult result => Create(seq, ToolResult, new { name = result.Name, ok = result.Ok }),
        AgentEvent.MemoryUpdated memory => Create(seq, MemoryUpdated, new { label = memory.Label }),
        AgentEvent.Usage usage => Create(seq, Usage, new { prompt_tokens = usage.PromptTokens, completion_tokens = usage.CompletionTokens, cost_usd = usage.CostUsd, model = usage.Model, budget }),
        _ => null,
    };

    /// <summary>A <c>turn.failed</c> event: an RFC 9457 problem document with a stable code.</summary>
    public static StoredEvent Problem(int seq, int status, string code, string detail, Guid turnId, IReadOnlyDictionary<string, object?>? extensions = null)
    {
        var problem = new Dictionary<string, object?>
        {
            ["type"] = $"https://aichat.dev/problems/{code.Replace('_', '-')}",
            ["title"] = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status),
            ["status"] = status,
            ["detail"] = detail,
            ["code"] = code,
            ["turn_id"] = turnId,
        };
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            problem[key] = value;
        }

        return Create(seq, Failed, problem);
    }

    private static JsonNode? ParseArguments(string arguments)
    {
        try
        {
            return JsonNode.Parse(arguments);
        }
        catch (JsonException)
        {
            return JsonValue.Create(arguments);
        }
    }
}
