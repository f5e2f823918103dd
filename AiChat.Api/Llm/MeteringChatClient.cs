using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using AiChat.Api.Billing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Llm;

/// <summary>
/// Meters every LLM call of the pipeline: reserves the worst case (prompt counted with the tokenizer, plus the output
/// bound, at the model's price) before the call, settles to the real usage after it, and releases the reservation when
/// the call fails before any output. The update carrying the usage also carries an <see cref="LlmCharge"/>. A call
/// whose options name no <see cref="LlmCaller"/> is refused.
/// </summary>
public sealed partial class MeteringChatClient(IChatClient inner, Ledger ledger, PriceTable prices, TokenCounter tokens, IOptions<LlmOptions> llm, ILogger<MeteringChatClient> logger)
    : DelegatingChatClient(inner)
{
    // The tokenizer counts the text; framing and tool schemas are estimated on top, with a margin.
    private const double PromptMargin = 1.1;

    // What a tool's declaration counts, per tool for as long as it lives (the built-in agent's tools live for good).
    private static readonly ConditionalWeakTable<AIFunctionDeclaration, StrongBox<int>> ToolCounts = new();

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? messages.ToList();
        var caller = LlmCaller.Of(options) ?? throw new InvalidOperationException("An LLM call must name the user it is charged to.");
        var model = options?.ModelId ?? llm.Value.EffectiveModel;
        var maxOutput = options?.MaxOutputTokens ?? llm.Value.MaxOutputTokens;
        var promptEstimate = (int)Math.Ceiling((tokens.Count(list) + ToolTokens(options)) * PromptMargin);
        var reservation = await ledger.HoldAsync(caller.UserId, caller.TurnId, model, prices.CostNanos(model, promptEstimate, maxOutput), cancellationToken);

        var settled = false;
        var said = new StringBuilder();
        try
        {
            await using var stream = base.GetStreamingResponseAsync(list, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (await stream.MoveNextAsync())
            {
                var update = stream.Current;
                foreach (var content in update.Contents)
                {
                    if (content is TextContent text)
                    {
                        said.Append(text.Text);
                    }
                }

                if (!settled && update.Contents.OfType<UsageContent>().FirstOrDefault() is { } usage)
                {
                    var used = update.ModelId ?? model;
                    var prompt = (int)(usage.Details.InputTokenCount ?? promptEstimate);
                    var completion = (int)(usage.Details.OutputTokenCount ?? tokens.Count(said.ToString()));
                    var cost = ReportedCost(update) is { } reported ? PriceTable.ToNanos(reported) : prices.CostNanos(used, prompt, completion);
                    var settlement = await ledger.SettleAsync(reservation.Id, cost, prompt, completion, used);
                    if (settlement.Capped)
                    {
                        // The budget holds, but the provider counted more than was reserved: the difference is not billed.
                        LogCapped(logger, used, cost, settlement.Charged);
                    }

                    settled = true;
                    update.Contents.Add(new LlmCharge(used, settlement.Charged, Math.Max(0, reservation.RemainingBefore - settlement.Charged)));
                }

                yield return update;
            }
        }
        finally
        {
            if (!settled)
            {
                // No usage came back: charge what is known to have been produced, or nothing if the call never answered.
                var output = tokens.Count(said.ToString());
                if (output > 0)
                {
                    await ledger.SettleAsync(reservation.Id, prices.CostNanos(model, promptEstimate, output), promptEstimate, output, model);
                }
                else
                {
                    await ledger.ReleaseAsync(reservation.Id);
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
            ? tools.OfType<AIFunctionDeclaration>().Sum(tool => ToolCounts.GetValue(tool, declared =>
                new StrongBox<int>(tokens.Count(declared.Name) + tokens.Count(declared.Description) + tokens.Count(JsonSerializer.Serialize(declared.JsonSchema)) + 10)).Value)
            : 0;
}

/// <summary>Meters embedding calls (archival memory) by their input tokens, reserved before and settled after, like chat calls.</summary>
public sealed class MeteringEmbeddingGenerator(IEmbeddingGenerator<string, Embedding<float>> inner, Ledger ledger, PriceTable prices, TokenCounter tokens, IOptions<LlmOptions> llm)
    : DelegatingEmbeddingGenerator<string, Embedding<float>>(inner)
{
    public override async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var inputs = values as IList<string> ?? values.ToList();
        var caller = LlmCaller.Of(options) ?? throw new InvalidOperationException("An embedding call must name the user it is charged to.");
        var model = options?.ModelId ?? llm.Value.EffectiveEmbeddingModel;
        var inputTokens = inputs.Sum(tokens.Count);
        var reservation = await ledger.HoldAsync(caller.UserId, caller.TurnId, model, prices.CostNanos(model, (long)Math.Ceiling(inputTokens * 1.1), 0), cancellationToken);
        GeneratedEmbeddings<Embedding<float>> generated;
        try
        {
            generated = await base.GenerateAsync(inputs, options, cancellationToken);
        }
        catch
        {
            await ledger.ReleaseAsync(reservation.Id);
            throw;
        }

        var used = (int)(generated.Usage?.InputTokenCount ?? inputTokens);
        await ledger.SettleAsync(reservation.Id, prices.CostNanos(model, used, 0), used, 0, model);
        generated.Usage ??= new UsageDetails();
        generated.Usage.InputTokenCount = used;
        return generated;
    }
}

public static class MeteringExtensions
{
    /// <summary>Adds metering to a chat pipeline: every call below this stage is reserved against and charged to its caller.</summary>
    public static ChatClientBuilder UseMetering(this ChatClientBuilder builder) =>
        builder.Use((inner, services) => new MeteringChatClient(inner, services.GetRequiredService<Ledger>(), services.GetRequiredService<PriceTable>(),
            services.GetRequiredService<TokenCounter>(), services.GetRequiredService<IOptions<LlmOptions>>(), services.GetRequiredService<ILogger<MeteringChatClient>>()));

    /// <summary>Adds metering to an embedding pipeline, by input tokens.</summary>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> UseMetering(this EmbeddingGeneratorBuilder<string, Embedding<float>> builder) =>
        builder.Use((inner, services) => new MeteringEmbeddingGenerator(inner, services.GetRequiredService<Ledger>(), services.GetRequiredService<PriceTable>(),
            services.GetRequiredService<TokenCounter>(), services.GetRequiredService<IOptions<LlmOptions>>()));
}
