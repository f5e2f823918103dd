using Microsoft.Extensions.Options;

namespace AiChat.Api.Agents.Letta;

public static class LettaExtensions
{
    /// <summary>
    /// The Letta runtime: options from <c>Letta</c>, the typed <see cref="LettaClient"/> on the streaming resilience
    /// profile (the client does its own 409 and read retries), and <see cref="LettaRuntime"/>, also as the
    /// <see cref="IAgentRuntime"/> keyed <c>letta</c>. Needs an <see cref="IInternalLlmKeys"/>.
    /// </summary>
    public static IHostApplicationBuilder AddLettaRuntime(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.Configure<LettaOptions>(builder.Configuration.GetSection(LettaOptions.Section));
        // The client takes its base address from the options; service discovery resolves http://letta per request.
        services.AddHttpClient<LettaClient>().AddStreamingResilience(LettaClient.Circuit);
        services.AddTransient<LettaRuntime>();
        if (builder.Configuration.GetSection(AgentOptions.Section).Get<AgentOptions>()?.UsesLetta == true)
        {
            services.AddUpstreamProbe("letta", sp => new Uri(sp.GetRequiredService<IOptions<LettaOptions>>().Value.BaseUrl, "v1/health/"));
        }

        services.AddKeyedTransient<IAgentRuntime>(AgentRuntimes.Letta, (sp, _) => sp.GetRequiredService<LettaRuntime>());
        return builder;
    }
}
