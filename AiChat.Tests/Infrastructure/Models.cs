using AiChat.Api.Llm;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Infrastructure;

public static class Models
{
    /// <summary>Puts a test's model where the real one sits: under the API's metered LLM pipeline (so its calls are still charged).</summary>
    public static IServiceCollection UseModel(this IServiceCollection services, IChatClient model) =>
        services.AddKeyedSingleton(LlmExtensions.Upstream, model);
}
