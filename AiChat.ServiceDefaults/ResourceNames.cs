namespace AiChat;

/// <summary>The names of the distributed application's resources, shared by the AppHost, the services and the tests.</summary>
public static class ResourceNames
{
    public const string Gateway = "gateway";
    public const string Api = "api";
    public const string Postgres = "postgres";
    public const string AiChatDb = "aichatdb";
    public const string LiteLlmDb = "litellm-db";
    public const string LettaDb = "letta-db";
    public const string LiteLlm = "litellm";
    public const string Letta = "letta";

    /// <summary>The named HTTP client profiles of <c>AddServiceDefaults</c>.</summary>
    public const string ManagementClient = "management";
    public const string StreamingClient = "streaming";
}
