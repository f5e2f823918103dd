using Microsoft.Extensions.Options;

namespace AiChat.Api.Billing;

public static class LiteLlmExtensions
{
    /// <summary>
    /// LiteLLM: options from <c>LiteLlm</c> (a master key, when set, must start with <c>sk-</c>) and the typed
    /// <see cref="LiteLlmClient"/> on the management resilience profile every client gets from the service defaults.
    /// </summary>
    public static IHostApplicationBuilder AddLiteLlm(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<LiteLlmOptions>()
            .Bind(builder.Configuration.GetSection(LiteLlmOptions.Section))
            .Validate(
                options => !options.Enabled || options.MasterKey!.StartsWith(LiteLlmOptions.KeyPrefix, StringComparison.Ordinal),
                $"{LiteLlmOptions.Section}:{nameof(LiteLlmOptions.MasterKey)} must start with \"{LiteLlmOptions.KeyPrefix}\".")
            .ValidateOnStart();
        // The client takes its base address from the options; service discovery resolves http://litellm per request.
        builder.Services.AddHttpClient<LiteLlmClient>();
        if (builder.Configuration.GetSection(LiteLlmOptions.Section).Get<LiteLlmOptions>()?.Enabled == true)
        {
            builder.Services.AddUpstreamProbe("litellm", sp => new Uri(sp.GetRequiredService<IOptions<LiteLlmOptions>>().Value.BaseUrl, "health/liveliness"));
        }

        return builder;
    }
}
