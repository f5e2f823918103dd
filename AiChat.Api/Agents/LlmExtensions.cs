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

                var http = services.GetRequiredService<IHttpClientFactory>().CreateClient(HttpClientName);
                var client = new OpenAIClient(
                    new ApiKeyCredential(string.IsNullOrEmpty(options.ApiKey) ? "none" : options.ApiKey),
                    new OpenAIClientOptions
                    {
                        Endpoint = options.Endpoint,
                        Transport = new HttpClientPipelineTransport(http),
                        // Retries belong to the HTTP pipeline's streaming profile, which never retries a started response.
                        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
                        NetworkTimeout = Timeout.InfiniteTimeSpan,
                    });
                return client.GetChatClient(options.Model).AsIChatClient();
            })
            .UseOpenTelemetry(configure: telemetry => telemetry.EnableSensitiveData = false);

        return builder;
    }
}
