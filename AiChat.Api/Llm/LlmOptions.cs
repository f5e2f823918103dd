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

    public bool UsesOfflineModel => Endpoint is null;

    /// <summary>
    /// The catalogue (<see cref="ModelCatalog"/>). When given, its default entry is what <see cref="Model"/>,
    /// <see cref="ContextWindow"/> and <see cref="MaxOutputTokens"/> read; when empty, those three make a one-model catalogue.
    /// </summary>
    public List<LlmModelOptions> Models { get; set; } = [];

    /// <summary>The default model's name, as reported (and priced); without an endpoint the offline model answers for a catalogue model too.</summary>
    public string EffectiveModel => UsesOfflineModel && Models.Count == 0 ? OfflineChatClient.ModelName : Model;
}
