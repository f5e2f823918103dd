using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>The OpenAI chat-completions wire format, read into and written from <c>Microsoft.Extensions.AI</c> types (no HTTP here).</summary>
public static class OpenAiWire
{
    /// <summary>A chat-completions request, answered by the catalogue model it names, or by the default one when it names another.</summary>
    public static (List<ChatMessage> Messages, ChatOptions Options) ReadRequest(JsonObject request, ModelCatalog models)
    {
        var messages = new List<ChatMessage>();
        foreach (var node in request["messages"]?.AsArray() ?? throw new JsonException("messages are required"))
        {
            var message = node!.AsObject();
            var role = message["role"]!.GetValue<string>();
            var text = Text(message["content"]);
            switch (role)
            {
                case "system" or "developer":
                    messages.Add(new ChatMessage(ChatRole.System, text));
                    break;
                case "user":
                    messages.Add(new ChatMessage(ChatRole.User, text));
                    break;
                case "assistant":
                    var contents = new List<AIContent>();
                    if (!string.IsNullOrEmpty(text))
                    {
                        contents.Add(new TextContent(text));
                    }

                    foreach (var call in message["tool_calls"]?.AsArray() ?? [])
                    {
                        var function = call!["function"]!;
                        var arguments = function["arguments"]?.GetValue<string>();
                        contents.Add(new FunctionCallContent(
                            call["id"]!.GetValue<string>(),
                            function["name"]!.GetValue<string>(),
                            string.IsNullOrWhiteSpace(arguments) ? new Dictionary<string, object?>() : JsonSerializer.Deserialize<Dictionary<string, object?>>(arguments)));
                    }

                    messages.Add(new ChatMessage(ChatRole.Assistant, contents));
                    break;
                case "tool":
                    messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(message["tool_call_id"]!.GetValue<string>(), text)]));
                    break;
                default:
                    throw new JsonException($"unknown role {role}");
            }
        }

        var tools = (request["tools"]?.AsArray() ?? [])
            .Select(tool => tool!["function"]!)
            .Select(function => (AITool)AIFunctionFactory.CreateDeclaration(
                function["name"]!.GetValue<string>(),
                function["description"]?.GetValue<string>() ?? "",
                JsonSerializer.SerializeToElement(function["parameters"] ?? new JsonObject { ["type"] = "object" })))
            .ToList();
        var maxTokens = (request["max_completion_tokens"] ?? request["max_tokens"])?.GetValue<int>();
        var model = models.Resolve(request["model"] is JsonValue name && name.GetValueKind() == JsonValueKind.String ? name.GetValue<string>() : null);
        return (messages, new ChatOptions
        {
            ModelId = model.Id,
            MaxOutputTokens = Math.Min(maxTokens ?? model.MaxOutputTokens, model.MaxOutputTokens),
            Tools = tools.Count > 0 ? tools : null,
            Temperature = request["temperature"]?.GetValue<float>(),
        });
    }

    public static JsonObject Completion(ChatResponse response, string model)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = response.Text.Length > 0 ? response.Text : null };
        var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select((call, i) => (JsonNode)ToolCall(call, i)).ToArray();
        if (calls.Length > 0)
        {
            message["tool_calls"] = new JsonArray(calls);
        }

        return new JsonObject
        {
            ["id"] = $"chatcmpl-{Guid.NewGuid():N}",
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = FinishReason(response.FinishReason ?? (calls.Length > 0 ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop)) }),
            ["usage"] = response.Usage is null ? null : Usage(response.Usage, response.Messages.SelectMany(m => m.Contents).OfType<LlmCharge>().FirstOrDefault()),
        };
    }

    public static JsonObject Chunk(string id, string model, JsonObject delta, string? finishReason) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason }),
    };

    public static JsonObject ToolCall(FunctionCallContent call, int index) => new()
    {
        ["index"] = index,
        ["id"] = call.CallId,
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>()) },
    };

    public static JsonObject Usage(UsageDetails usage, LlmCharge? charge)
    {
        var json = new JsonObject
        {
            ["prompt_tokens"] = usage.InputTokenCount ?? 0,
            ["completion_tokens"] = usage.OutputTokenCount ?? 0,
            ["total_tokens"] = (usage.InputTokenCount ?? 0) + (usage.OutputTokenCount ?? 0),
        };
        if (charge is not null)
        {
            json["cost"] = Billing.PriceTable.ToUsd(charge.CostNanos);
        }

        return json;
    }

    public static string? FinishReason(ChatFinishReason? reason) =>
        reason == ChatFinishReason.ToolCalls ? "tool_calls" : reason == ChatFinishReason.Length ? "length" : "stop";

    private static string Text(JsonNode? content) => content switch
    {
        null => "",
        JsonValue value => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select(p => p?["text"]?.GetValue<string>() ?? "")),
        _ => "",
    };
}
