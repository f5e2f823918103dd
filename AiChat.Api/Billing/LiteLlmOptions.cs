namespace AiChat.Api.Billing;

/// <summary>Where the LiteLLM proxy runs and the master key AiChat manages its users and keys with (section <c>LiteLlm</c>).</summary>
public sealed class LiteLlmOptions
{
    public const string Section = "LiteLlm";

    /// <summary>LiteLLM's master keys always start with this.</summary>
    public const string KeyPrefix = "sk-";

    /// <summary>The proxy's address; <c>http://litellm</c> is resolved by Aspire service discovery.</summary>
    public Uri BaseUrl { get; set; } = new("http://litellm");

    /// <summary>LiteLLM's <c>LITELLM_MASTER_KEY</c>: a secret, starting with <c>sk-</c>.</summary>
    public string? MasterKey { get; set; }

    /// <summary>LiteLLM is used only when a master key is configured.</summary>
    public bool Enabled => !string.IsNullOrEmpty(MasterKey);
}
