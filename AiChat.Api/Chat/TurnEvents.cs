using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using AiChat.Api.Agents;
using AiChat.Api.Billing;

namespace AiChat.Api.Chat;

/// <summary>The stream events of DESIGN §3.1: their names, their typed data, and the one way they are serialised (snake_case).</summary>
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

    public static StoredEvent Create<T>(int seq, string @event, T data) =>
        new() { Seq = seq, Event = @event, Data = JsonSerializer.Serialize(data, Json) };

    /// <summary>The stored form of an agent event that is streamed as it is (not the turn's end, which the runner writes).</summary>
    public static StoredEvent? From(int seq, AgentEvent agentEvent) => agentEvent switch
    {
        AgentEvent.MessageDelta delta => Create(seq, MessageDelta, new TextData(delta.Text)),
        AgentEvent.ReasoningDelta reasoning => Create(seq, ReasoningDelta, new TextData(reasoning.Text)),
        AgentEvent.ToolCall call => Create(seq, ToolCall, new ToolCallData(call.Name, ParseArguments(call.Arguments))),
        AgentEvent.ToolResult result => Create(seq, ToolResult, new ToolResultData(result.Name, result.Ok)),
        AgentEvent.MemoryUpdated memory => Create(seq, MemoryUpdated, new MemoryUpdatedData(memory.Label)),
        AgentEvent.Usage usage => Create(seq, Usage, new UsageData(
            usage.PromptTokens,
            usage.CompletionTokens,
            usage.CostNanos is { } cost ? PriceTable.ToUsd(cost) : null,
            usage.Model,
            usage.RemainingNanos is { } remaining ? new BudgetSummary(PriceTable.ToUsd(remaining)) : null)),
        _ => null,
    };

    /// <summary>A <c>turn.failed</c> event: the turn's failure as an RFC 9457 problem document with a stable code.</summary>
    public static StoredEvent Problem(int seq, Guid turnId, TurnFailure failure) =>
        Create(seq, Failed, new TurnFailedData(
            $"https://aichat.dev/problems/{failure.Code.Replace('_', '-')}",
            Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(failure.Status),
            failure.Status,
            failure.Detail,
            failure.Code,
            turnId)
        {
            Figures = failure.Figures?.ToDictionary(figure => figure.Key, figure => figure.Value),
        });

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

public sealed record TurnStartedData(Guid TurnId, Guid UserMessageId, Guid AssistantMessageId);

/// <summary>A piece of text: <c>message.delta</c> and <c>reasoning.delta</c>.</summary>
public sealed record TextData(string Text);

public sealed record ToolCallData(string Name, JsonNode? Arguments);

public sealed record ToolResultData(string Name, bool Ok);

public sealed record MemoryUpdatedData(string Label);

public sealed record UsageData(int PromptTokens, int CompletionTokens, decimal? CostUsd, string Model, BudgetSummary? Budget);

public sealed record TurnCompletedData(MessageDto AssistantMessage, UsageDto? Usage, BudgetSummary? Budget);

public sealed record TurnFailedData(string Type, string Title, int Status, string Detail, string Code, Guid TurnId)
{
    /// <summary>The figures that explain the failure (e.g. <c>remaining_usd</c>), as members of the problem document.</summary>
    [JsonExtensionData]
    public Dictionary<string, object?>? Figures { get; init; }
}

/// <summary>Why a turn failed: stored on the turn's row once, and shown as a problem document to JSON and stream clients alike.</summary>
public sealed record TurnFailure(int Status, string Code, string Detail, IReadOnlyDictionary<string, object?>? Figures = null)
{
    public static TurnFailure Of(AgentEvent.Failed failed) => new(failed.Status, failed.Code, failed.Detail, failed.Extensions);
}
