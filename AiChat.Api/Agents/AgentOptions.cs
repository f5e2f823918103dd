namespace AiChat.Api.Agents;

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

    /// <summary>How long a reset holds the default conversation before a turn may take it over (renewed while the reset runs).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The longest the summary of older turns may grow, in characters.</summary>
    public int MaxSummaryChars { get; set; } = 4000;

    public bool UsesLetta => Runtime.Equals("Letta", StringComparison.OrdinalIgnoreCase);
}
