using System.ClientModel;
using System.ClientModel.Primitives;
using AiChat.Api.Billing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenAI;

namespace AiChat.Api.Llm;

public static class LlmExtensions
{
    public const string HttpClientName = "llm";

    /// <summary>The key of the model itself (offline, any OpenAI-compatible endpoint, or LiteLLM), under the metered pipeline.</summary>
    public const string Upstream = "llm-upstream";

    /// <summary>
    /// Every LLM call AiChat makes, composed once: the upstream model (<c>Llm:Endpoint</c> over the streaming resilience
    /// profile, with each user's LiteLLM key in the full profile, or the offline model), wrapped by metering (reserve,
    /// settle, charge), wrapped by OpenTelemetry. Callers take a plain <see cref="IChatClient"/> or embedding generator
    /// and name the <see cref="LlmCaller"/> on the call's options. Also the token counter, the internal per-user keys and
    /// the <c>/internal/llm</c> endpoint's dependencies.
    /// </summary>
    public static IHostApplicationBuilder AddLlm(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        var section = builder.Configuration.GetSection(LlmOptions.Section);
        services.AddOptions<LlmOptions>().Bind(section).PostConfigure(UseDefaultModel)
            .Validate(
                options => options.Offline.WordDelay >= TimeSpan.Zero && options.Offline.WordDelay <= OfflineModelOptions.MaxWordDelay,
                $"{LlmOptions.Section}:Offline:WordDelay must be between 00:00:00 and {OfflineModelOptions.MaxWordDelay:c}.")
            .Validate(
                options => options.ContextBudgetTokens >= LlmOptions.MinContextBudgetTokens,
                $"{LlmOptions.Section}:ContextBudgetTokens must be at least {LlmOptions.MinContextBudgetTokens:N0}.")
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<LlmOptions>, ModelCatalogValidation>();
        services.AddSingleton<ModelCatalog>();

        // Billing knows no Llm: the catalogue's own prices reach the ledger as configured prices (they win over Billing:Prices).
        services.PostConfigure<BillingOptions>(billing =>
        {
            foreach (var (id, price) in ModelCatalog.ConfiguredPrices(section.GetSection(nameof(LlmOptions.Models)).Get<List<LlmModelOptions>>() ?? []))
            {
                billing.Prices[id] = price;
            }
        });
        services.AddSingleton<TokenCounter>();
        services.AddSingleton<IInternalLlmKeys, InternalLlmKeys>();
        services.AddMemoryCache();
        services.AddHttpClient(HttpClientName).AddStreamingResilience(HttpClientName);

        var liteLlm = builder.Configuration.GetSection(LiteLlmOptions.Section).Get<LiteLlmOptions>() ?? new LiteLlmOptions();
        if (liteLlm.Enabled)
        {
            services.AddSingleton(sp => new LiteLlmUserKeys(
                sp.GetRequiredService<LiteLlmKeyStore>(),
                sp.GetRequiredService<IMemoryCache>(),
                key =>
                {
                    var options = sp.GetRequiredService<IOptions<LlmOptions>>().Value;
                    var client = OpenAi(sp, options, key);
                    return new LiteLlmUserClients(client.GetChatClient(options.Model).AsIChatClient(), client.GetEmbeddingClient(options.EmbeddingModel).AsIEmbeddingGenerator());
                }));
        }

        services.AddKeyedSingleton<IChatClient>(Upstream, (sp, _) =>
        {
            var options = sp.GetRequiredService<IOptions<LlmOptions>>().Value;
            return options.UsesOfflineModel ? new OfflineChatClient(sp.GetRequiredService<TokenCounter>())
                : liteLlm.Enabled ? new LiteLlmUserKeyChatClient(sp.GetRequiredService<LiteLlmUserKeys>(), options.Model)
                : OpenAi(sp, options, options.ApiKey).GetChatClient(options.Model).AsIChatClient();
        });
        services.AddKeyedSingleton<IEmbeddingGenerator<string, Embedding<float>>>(Upstream, (sp, _) =>
        {
            var options = sp.GetRequiredService<IOptions<LlmOptions>>().Value;
            return options.UsesOfflineModel ? new OfflineEmbeddingGenerator()
                : liteLlm.Enabled ? new LiteLlmUserKeyEmbeddingGenerator(sp.GetRequiredService<LiteLlmUserKeys>())
                : OpenAi(sp, options, options.ApiKey).GetEmbeddingClient(options.EmbeddingModel).AsIEmbeddingGenerator();
        });

        // The first stage added is the outermost: OpenTelemetry sees the metered call, metering wraps the model. The
        // offline model's pace goes above metering, which turns a non-streaming call into a stream below it.
        services.AddChatClient(sp => sp.GetRequiredKeyedService<IChatClient>(Upstream))
            .UseOpenTelemetry(configure: telemetry => telemetry.EnableSensitiveData = false)
            .UseOfflinePace()
            .UseMetering();
        services.AddEmbeddingGenerator(sp => sp.GetRequiredKeyedService<IEmbeddingGenerator<string, Embedding<float>>>(Upstream))
            .UseOpenTelemetry()
            .UseMetering();

        return builder;
    }

    /// <summary>With a catalogue, the single-model settings read its default entry, so every reader of them agrees with it.</summary>
    private static void UseDefaultModel(LlmOptions options)
    {
        var defaults = options.Models.Where(model => model.Default).ToList();
        if (defaults is [var model] && !string.IsNullOrWhiteSpace(model.Id))
        {
            options.Model = model.Id;
            options.ContextWindow = model.ContextWindow;
            options.MaxOutputTokens = model.MaxOutputTokens;
        }
    }

    private static OpenAIClient OpenAi(IServiceProvider services, LlmOptions options, string? apiKey) => new(
        new ApiKeyCredential(string.IsNullOrEmpty(apiKey) ? "none" : apiKey),
        new OpenAIClientOptions
        {
            Endpoint = options.Endpoint,
            Transport = new HttpClientPipelineTransport(services.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName)),
            // Retries belong to the HTTP pipeline's streaming profile, which never retries a started response.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = Timeout.InfiniteTimeSpan,
        });
}
