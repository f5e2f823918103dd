using Microsoft.Extensions.AI;

namespace AiChat.Api.Llm;

/// <summary>Who an LLM call is made for: the user it is charged to, and the turn it belongs to (when it is part of one).</summary>
public sealed record LlmCaller(Guid UserId, Guid? TurnId = null)
{
    private const string Key = "aichat.caller";

    /// <summary>The caller named on a call's options, or null when the call names none (and will be refused).</summary>
    public static LlmCaller? Of(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(Key, out var value) == true ? value as LlmCaller : null;

    public static LlmCaller? Of(EmbeddingGenerationOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(Key, out var value) == true ? value as LlmCaller : null;

    /// <summary>These options, naming this caller.</summary>
    public ChatOptions On(ChatOptions options)
    {
        options.AdditionalProperties ??= [];
        options.AdditionalProperties[Key] = this;
        return options;
    }

    public EmbeddingGenerationOptions On(EmbeddingGenerationOptions options)
    {
        options.AdditionalProperties ??= [];
        options.AdditionalProperties[Key] = this;
        return options;
    }
}

/// <summary>
/// What a metered call was charged, added by the metering client to the update that carries the call's usage.
/// Money is nano-USD; <see cref="RemainingNanos"/> is the budget left after this call as the ledger saw it.
/// </summary>
public sealed class LlmCharge(string model, long costNanos, long remainingNanos) : AIContent
{
    public string Model { get; } = model;

    public long CostNanos { get; } = costNanos;

    public long RemainingNanos { get; } = remainingNanos;
}
