namespace AiChat.Api.Agents;

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

    /// <summary>The model name reported (and priced) for what was used.</summary>
    public string EffectiveModel => UsesOfflineModel ? OfflineChatClient.ModelName : Model;
}

/// <summary>The agents: which runtime new agents get, their default memory, and the bounds of a turn.</summary>
public sealed class AgentOptions
{
    public const string Section = "Agents";

    /// <summary><c>BuiltIn</c> (default) or <c>Letta</c>.</summary>
    public string Runtime { get; set; } = "BuiltIn";

    public string Persona { get; set; } =
        "I am the user's personal assistant. I am warm, concise and honest. I remember what matters to the user with my memory tools and use what I remember.";

    public int PersonaLimit { get; set; } = 5000;

    public int HumanLimit { get; set; } = 5000;

    /// <summary>LLM calls one turn may make; the last one is offered no tools, so the turn always ends with an answer.</summary>
    public int MaxSteps { get; set; } = 6;

    /// <summary>How long a turn holds its agent before another may take it over (renewed while the turn runs).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The longest the summary of older turns may grow, in characters.</summary>
    public int MaxSummaryChars { get; set; } = 4000;

    public bool UsesLetta => Runtime.Equals("Letta", StringComparison.OrdinalIgnoreCase);
}
