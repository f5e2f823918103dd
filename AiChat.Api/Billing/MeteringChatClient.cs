using System.Runtime.CompilerServices;
using System.Text.Json;
using AiChat.Api.Agents;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Billing;

/// <summary>
/// Meters every LLM call made through <see cref="IChatClient"/>: reserves the worst case (prompt counted with the
/// tokenizer, plus the output bound, at the model's price) before the call, settles to the real usage after it, and
/// releases the reservation when the call fails before any output. A call without a user to charge is refused.
/// </summary>
public sealed partial class MeteringChatClient(IChatClient inner, Ledger ledger, PriceTable prices, TokenCounter tokens, IOptions<LlmOptions> llm, ILogger? logger = null)
    : DelegatingChatClient(inner)
{
    public const string UserKey = "aichat.user_id";
    public const string TurnKey = "aichat.turn_id";

    /// <summary>The settled cost of the call, in nano-USD, added to its usage.</summary>
    public const string CostKey = "aichat.cost_nanousd";

    // The tokenizer counts the text; framing and tool schemas are estimated on top, with a margin.
    private const double PromptMargin = 1.1;

    public static ChatOptions For(ChatOptions options, Guid userId, Guid? turnId)
    {
        options.AdditionalProperties ??= [];
        options.AdditionalProperties[UserKey] = userId;
        if (turnId is not null)
        {
            options.AdditionalProperties[TurnKey] = turnId.Value;
        }

        return options;
    }

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? messages.ToList();
        var userId = options?.AdditionalProperties?.TryGetValue(UserKey, out var user) == true && user is Guid id
            ? id
            : throw new InvalidOperationException("An LLM call must name the user it is charged to.");
        var turnId = options?.AdditionalProperties?.TryGetValue(TurnKey, out var turn) == true && turn is Guid t ? t : (Guid?)null;
        var model = options?.ModelId ?? llm.Value.EffectiveModel;
        var maxOutput = options?.MaxOutputTokens ?? llm.Value.MaxOutputTokens;
        var promptEstimate = (int)Math.Ceiling((tokens.Count(list) + ToolTokens(options)) * PromptMargin);
        var reservation = await ledger.ReserveAsync(userId, turnId, model, prices.CostNanos(model, promptEstimate, maxOutput), cancellationToken);

        var settled = false;
        var output = 0;
        LlmCallContext.Set(userId);
        try
        {
            await using var stream = base.GetStreamingResponseAsync(list, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (await stream.MoveNextAsync())
            {
                var update = stream.Current;
                output += update.Contents.OfType<TextContent>().Sum(text => tokens.Count(text.Text));
                if (!settled && update.Contents.OfType<UsageContent>().FirstOrDefault() is { } usage)
                {
                    var prompt = (int)(usage.Details.InputTokenCount ?? promptEstimate);
                    var completion = (int)(usage.Details.OutputTokenCount ?? output);
                    var cost = ReportedCost(update) is { } reported ? PriceTable.ToNanos(reported) : prices.CostNanos(update.ModelId ?? model, prompt, completion);
                    var (charged, capped) = await ledger.SettleAsync(reservation, cost, prompt, completion, update.ModelId ?? model);
                    if (capped && logger is not null)
                    {
                        // The budget holds, but the provider counted more than was reserved: the difference is not billed.
                        LogCapped(logger, update.ModelId ?? model, cost, charged);
                    }

                    settled = true;
                    usage.Details.AdditionalCounts ??= [];
                    usage.Details.AdditionalCounts[CostKey] = charged;
                }

                yield return update;
            }
        }
        finally
        {
            if (!settled)
            {
                // No usage came back: charge what is known to have been produced, or nothing if the call never answered.
                if (output > 0)
                {
                    await ledger.SettleAsync(reservation, prices.CostNanos(model, promptEstimate, output), promptEstimate, output, model);
                }
                else
                {
                    await ledger.ReleaseAsync(reservation);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "An LLM call on {Model} cost {ActualNanos} nano-USD, more than its reservation; {ChargedNanos} was charged")]
    private static partial void LogCapped(ILogger logger, string model, long actualNanos, long chargedNanos);

    /// <summary>The cost LiteLLM puts in its usage chunk (<c>usage.cost</c>), when the call went through LiteLLM.</summary>
    private static decimal? ReportedCost(ChatResponseUpdate update)
    {
        var usage = update.RawRepresentation switch
        {
            OpenAI.Chat.StreamingChatCompletionUpdate streaming => streaming.Usage,
            OpenAI.Chat.ChatCompletion completion => completion.Usage,
            _ => null,
        };
        if (usage is null)
        {
            return null;
        }

        // The OpenAI SDK keeps fields it does not know; writing the usage back out brings LiteLLM's "cost" with it.
        using var json = JsonDocument.Parse(System.ClientModel.Primitives.ModelReaderWriter.Write(usage).ToString());
        return json.RootElement.TryGetProperty("cost", out var cost) && cost.ValueKind == JsonValueKind.Number && cost.GetDecimal() >= 0 ? cost.GetDecimal() : null;
    }

    private int ToolTokens(ChatOptions? options) =>
        options?.Tools is { Count: > 0 } tools
            ? tools.OfType<AIFunctionDeclaration>().Sum(tool => tokens.Count(tool.Name) + tokens.Count(tool.Description) + tokens.Count(JsonSerializer.Serialize(tool.JsonSchema)) + 10)
            : 0;
}
