using AiChat.Api.Llm;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Infrastructure;

public static class Models
{
    /// <summary>Puts a test's model where the real one sits: under the API's metered LLM pipeline (so its calls are still charged).</summary>
    public static IServiceCollection UseModel(this IServiceCollection services, IChatClient model) =>
        services.AddKeyedSingleton(LlmExtensions.Upstream, model);

    /// <summary>The same, for a model built from the API's own services (e.g. a wrapper around the offline model).</summary>
    public static IServiceCollection UseModel(this IServiceCollection services, Func<IServiceProvider, IChatClient> model) =>
        services.AddKeyedSingleton(LlmExtensions.Upstream, (sp, _) => model(sp));
}
