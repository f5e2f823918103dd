using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OpenAI;

namespace AiChat.Api.Agents;

public static class LlmExtensions
{
    public const string HttpClientName = "llm";

    /// <summary>
    /// The <see cref="IChatClient"/> of the built-in runtime: an OpenAI-compatible endpoint (<c>Llm:Endpoint</c>) over the
    /// streaming resilience profile, or the offline model; both with OpenTelemetry GenAI telemetry.
    /// </summary>
    private static OpenAIClient OpenAi(IServiceProvider services, LlmOptions options) => new(
        new ApiKeyCredential(string.IsNullOrEmpty(options.ApiKey) ? "none" : options.ApiKey),
        new OpenAIClientOptions
        {
            Endpoint = options.Endpoint,
            Transport = new HttpClientPipelineTransport(services.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName)),
            // Retries belong to the HTTP pipeline's streaming profile, which never retries a started response.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = Timeout.InfiniteTimeSpan,
        });

    public static IHostApplicationBuilder AddLlm(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<LlmOptions>(builder.Configuration.GetSection(LlmOptions.Section));
        builder.Services.AddSingleton<TokenCounter>();
        builder.Services.AddHttpClient(HttpClientName).AddStreamingResilience();

        builder.Services.AddChatClient(services =>
            {
                var options = services.GetRequiredService<IOptions<LlmOptions>>().Value;
                if (options.UsesOfflineModel)
                {
                    return new OfflineChatClient(services.GetRequiredService<TokenCounter>());
                }

                return OpenAi(services, options).GetChatClient(options.Model).AsIChatClient();
            })
            .UseOpenTelemetry(configure: telemetry => telemetry.EnableSensitiveData = false);

        builder.Services.AddEmbeddingGenerator(services =>
            {
                var options = services.GetRequiredService<IOptions<LlmOptions>>().Value;
                return options.UsesOfflineModel
                    ? new OfflineEmbeddingGenerator()
                    : OpenAi(services, options).GetEmbeddingClient(options.EmbeddingModel).AsIEmbeddingGenerator();
            })
            .UseOpenTelemetry();

        return builder;
    }
}
