using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Llm;

/// <summary>
/// <c>/internal/llm/v1</c>: an OpenAI-compatible endpoint for the agent runtime's own LLM calls (Letta). The bearer key
/// names the user (a per-user key signed with the internal secret), every call is reserved, forwarded to the catalogue
/// model it names (the default one for any other name; the offline model without an endpoint) and settled like the
/// built-in runtime's own calls. The gateway never routes it.
/// </summary>
public static class LlmProxyApi
{
    public static IEndpointRouteBuilder MapLlmProxy(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/internal/llm/v1").ExcludeFromDescription();

        group.MapGet("/models", ListModels);
        group.MapPost("/chat/completions", CompleteAsync);
        group.MapPost("/embeddings", EmbedAsync);

        return app;
    }

    /// <summary>Every catalogue model and the embedding model: what Letta may name in a handle on this endpoint.</summary>
    public static IResult ListModels(HttpContext context, IInternalLlmKeys keys, ModelCatalog models, IOptions<LlmOptions> llm) =>
        UserOf(context, keys) is null
            ? Error(StatusCodes.Status401Unauthorized, "invalid_api_key", "A per-user AiChat key is required.")
            : Results.Json(new
            {
                @object = "list",
                data = models.Models.Select(entry => entry.Id).Append(llm.Value.EffectiveEmbeddingModel).Distinct(StringComparer.Ordinal)
                    .Select(id => new { id, @object = "model", owned_by = "aichat" }),
            });

    public static async Task<IResult> CompleteAsync(HttpContext context, IInternalLlmKeys keys, IChatClient model, ModelCatalog models)
    {
        if (UserOf(context, keys) is not { } userId)
        {
            return Error(StatusCodes.Status401Unauthorized, "invalid_api_key", "A per-user AiChat key is required.");
        }

        JsonObject request;
        List<ChatMessage> messages;
        ChatOptions options;
        try
        {
            request = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject ?? throw new JsonException("not an object");
            (messages, options) = OpenAiWire.ReadRequest(request, models);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_request_error", "The request is not a chat completion request.");
        }

        new LlmCaller(userId).On(options);
        var stream = request["stream"]?.GetValue<bool>() == true;
        try
        {
            if (!stream)
            {
                var response = await model.GetResponseAsync(messages, options, context.RequestAborted);
                return Results.Json(OpenAiWire.Completion(response, options.ModelId!));
            }

            // Reserve before the first byte, so a refusal is still an ordinary error response.
            var updates = model.GetStreamingResponseAsync(messages, options, context.RequestAborted).GetAsyncEnumerator(context.RequestAborted);
            var first = await updates.MoveNextAsync();
            return new OpenAiStreamResult(updates, first, options.ModelId!, request["stream_options"]?["include_usage"]?.GetValue<bool>() == true);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Refusal(ex);
        }
    }

    /// <summary>Embeddings (archival memory), metered by their input tokens; <c>encoding_format: base64</c> as OpenAI's SDKs ask by default.</summary>
    public static async Task<IResult> EmbedAsync(HttpContext context, IInternalLlmKeys keys, IEmbeddingGenerator<string, Embedding<float>> embeddings, IOptions<LlmOptions> llm)
    {
        if (UserOf(context, keys) is not { } userId)
        {
            return Error(StatusCodes.Status401Unauthorized, "invalid_api_key", "A per-user AiChat key is required.");
        }

        List<string> inputs;
        bool base64;
        try
        {
            var request = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject ?? throw new JsonException("not an object");
            inputs = request["input"] switch
            {
                JsonValue single => [single.GetValue<string>()],
                JsonArray many => many.Select(item => item!.GetValue<string>()).ToList(),
                _ => throw new JsonException("input is required"),
            };
            base64 = request["encoding_format"]?.GetValue<string>() == "base64";
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_request_error", "The request is not an embeddings request.");
        }

        if (inputs.Count is 0 or > 2048)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_request_error", "Give between 1 and 2048 inputs.");
        }

        var model = llm.Value.EffectiveEmbeddingModel;
        GeneratedEmbeddings<Embedding<float>> generated;
        try
        {
            generated = await embeddings.GenerateAsync(inputs, new LlmCaller(userId).On(new EmbeddingGenerationOptions { ModelId = model }), context.RequestAborted);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Refusal(ex);
        }

        var used = (int)(generated.Usage?.InputTokenCount ?? 0);
        return Results.Json(new
        {
            @object = "list",
            model,
            data = generated.Select((embedding, index) => new
            {
                @object = "embedding",
                index,
                embedding = base64 ? (object)Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(embedding.Vector.Span).ToArray()) : embedding.Vector.ToArray(),
            }),
            usage = new { prompt_tokens = used, total_tokens = used },
        });
    }

    private static Guid? UserOf(HttpContext context, IInternalLlmKeys keys)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? keys.UserFor(header["Bearer ".Length..].Trim()) : null;
    }

    /// <summary>A failed call in LiteLLM's error shape, with the same status a chat turn would get.</summary>
    private static IResult Refusal(Exception exception)
    {
        var code = LlmErrors.CodeFor(exception);
        return Error(LlmErrors.StatusFor(code), code, LlmErrors.DetailFor(exception));
    }

    private static IResult Error(int status, string type, string message) =>
        Results.Json(new { error = new { message, type, param = (string?)null, code = status.ToString(System.Globalization.CultureInfo.InvariantCulture) } }, statusCode: status);

    /// <summary>Streams chat completion chunks as OpenAI does, ending with a usage chunk (when asked) and <c>[DONE]</c>.</summary>
    private sealed class OpenAiStreamResult(IAsyncEnumerator<ChatResponseUpdate> updates, bool hasFirst, string model, bool includeUsage) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            var id = $"chatcmpl-{Guid.NewGuid():N}";
            await using (updates)
            {
                var more = hasFirst;
                UsageDetails? usage = null;
                LlmCharge? charge = null;
                ChatFinishReason? finish = null;
                var toolIndex = 0;
                while (more)
                {
                    var update = updates.Current;
                    finish = update.FinishReason ?? finish;
                    foreach (var content in update.Contents)
                    {
                        switch (content)
                        {
                            case TextContent { Text.Length: > 0 } text:
                                await WriteAsync(context, OpenAiWire.Chunk(id, model, new JsonObject { ["content"] = text.Text }, null));
                                break;
                            case FunctionCallContent call:
                                await WriteAsync(context, OpenAiWire.Chunk(id, model, new JsonObject { ["tool_calls"] = new JsonArray(OpenAiWire.ToolCall(call, toolIndex++)) }, null));
                                break;
                            case UsageContent used:
                                usage = used.Details;
                                break;
                            case LlmCharge charged:
                                charge = charged;
                                break;
                        }
                    }

                    more = await updates.MoveNextAsync();
                }

                await WriteAsync(context, OpenAiWire.Chunk(id, model, new JsonObject(), OpenAiWire.FinishReason(finish)));
                if (includeUsage && usage is not null)
                {
                    await WriteAsync(context, new JsonObject
                    {
                        ["id"] = id,
                        ["object"] = "chat.completion.chunk",
                        ["model"] = model,
                        ["choices"] = new JsonArray(),
                        ["usage"] = OpenAiWire.Usage(usage, charge),
                    });
                }

                await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
            }
        }

        private static async Task WriteAsync(HttpContext context, JsonObject chunk)
        {
            await context.Response.WriteAsync($"data: {chunk.ToJsonString()}\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
    }
}
