namespace AiChat.Api.Llm;

/// <summary>The LLM behind the built-in runtime: any OpenAI-compatible endpoint, or the offline model when none is set.</summary>
public sealed class LlmOptions
{
    public const string Section = "Llm";

    public Uri? Endpoint { get; set; }

    public string? ApiKey { get; set; }

    public string Model { get; set; } = "gpt-4o-mini";

    public int MaxOutputTokens { get; set; } = 1024;

    /// <summary>The embedding model served by the metering endpoint (the offline one when no endpoint is set).</summary>
    public string EmbeddingModel { get; set; } = "text-embedding-3-small";

    public string EffectiveEmbeddingModel => UsesOfflineModel ? OfflineEmbeddingGenerator.ModelName : EmbeddingModel;

    /// <summary>The model's context window in tokens; the prompt plus <see cref="MaxOutputTokens"/> always fit in it.</summary>
    public int ContextWindow { get; set; } = 128_000;

    /// <summary>The smallest <see cref="ContextBudgetTokens"/> allowed: room for the memory blocks, a reply and some history.</summary>
    public const int MinContextBudgetTokens = 2_000;

    /// <summary>
    /// What one step of a turn may use of the model's window (<c>Llm:ContextBudgetTokens</c>, default 16,000; the
    /// window wins when it is smaller): the prompt plus the reply fit in it, so a long history no longer sends the whole
    /// window on every turn. Older turns are folded into the conversation's summary and stay searchable.
    /// </summary>
    public int ContextBudgetTokens { get; set; } = 16_000;

    /// <summary>The tokens a step may use with a model of <paramref name="window"/> tokens: the budget, never above the window.</summary>
    public int ContextLimit(int window) => Math.Min(ContextBudgetTokens, window);

    public bool UsesOfflineModel => Endpoint is null;

    /// <summary>How the offline model behaves (<c>Llm:Offline</c>); read only when it is the model.</summary>
    public OfflineModelOptions Offline { get; set; } = new();

    /// <summary>
    /// The catalogue (<see cref="ModelCatalog"/>). When given, its default entry is what <see cref="Model"/>,
    /// <see cref="ContextWindow"/> and <see cref="MaxOutputTokens"/> read; when empty, those three make a one-model catalogue.
    /// </summary>
    public List<LlmModelOptions> Models { get; set; } = [];

    /// <summary>The default model's name, as reported (and priced); without an endpoint the offline model answers for a catalogue model too.</summary>
    public string EffectiveModel => UsesOfflineModel && Models.Count == 0 ? OfflineChatClient.ModelName : Model;
}

/// <summary>The offline model's settings (<c>Llm:Offline</c>).</summary>
public sealed class OfflineModelOptions
{
    /// <summary>The longest pause between words; more would make a development turn look hung.</summary>
    public static readonly TimeSpan MaxWordDelay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The pause between two words of a streamed reply (<c>Llm:Offline:WordDelay</c>), so a person sees it arrive word by
    /// word as from a real model; zero streams at once. The API's appsettings.json sets 30 ms; the tests run with zero.
    /// </summary>
    public TimeSpan WordDelay { get; set; } = TimeSpan.Zero;
}
