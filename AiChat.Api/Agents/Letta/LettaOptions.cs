namespace AiChat.Api.Agents.Letta;

/// <summary>Where Letta runs and how agents on it reach AiChat's metered LLM endpoint (section <c>Letta</c>).</summary>
public sealed class LettaOptions
{
    public const string Section = "Letta";

    /// <summary>The server's address; <c>http://letta</c> is resolved by Aspire service discovery.</summary>
    public Uri BaseUrl { get; set; } = new("http://letta");

    /// <summary>The server password (<c>LETTA_SERVER_PASSWORD</c>) or a Letta Cloud key, sent as a bearer token.</summary>
    public string? Password { get; set; }

    /// <summary>The model name behind AiChat's metered endpoint; agents get the handle <c>aichat-&lt;user&gt;/&lt;Model&gt;</c>.</summary>
    public string Model { get; set; } = "gpt-4o-mini";

    /// <summary>The embedding model behind the same metered endpoint (handle <c>aichat-&lt;user&gt;/&lt;Embedding&gt;</c>), so archival memory is charged too.</summary>
    public string Embedding { get; set; } = "text-embedding-3-small";

    /// <summary>The URL at which Letta reaches AiChat's OpenAI-compatible endpoint, e.g. <c>http://host.docker.internal:5180/internal/llm/v1</c>.</summary>
    public string? LlmBaseUrl { get; set; }

    /// <summary>How often a call refused with 409 (the agent is busy with another request) is tried again.</summary>
    public int MaxConflictRetries { get; set; } = 3;

    /// <summary>The first wait before retrying a refused call; it doubles with every attempt.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The cut-off for one management call (everything but the streamed send).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
