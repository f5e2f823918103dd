using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiChat.AppHost;

public static class Extensions
{
    public const string PostgresImage = "pgvector/pgvector";
    public const string PostgresTag = "0.8.1-pg17";
    public const string LiteLlmImage = "berriai/litellm-database";
    public const string LiteLlmRegistry = "ghcr.io";
    public const string LiteLlmTag = "v1.80.11-stable.1";
    public const string LettaImage = "letta/letta";
    public const string LettaTag = "0.16.8";

    /// <summary>The path under the API that Letta uses as its OpenAI-compatible base URL (metered per user).</summary>
    public const string InternalLlmPath = "/internal/llm/v1";

    /// <summary>Postgres with pgvector (Letta needs the vector extension), pinned, with a data volume.</summary>
    public static IResourceBuilder<PostgresServerResource> AddAiChatPostgres(this IDistributedApplicationBuilder builder) =>
        builder.AddPostgres(ResourceNames.Postgres)
            .WithImage(PostgresImage, PostgresTag)
            .WithDataVolume("aichat-postgres-data");

    /// <summary>
    /// The LiteLLM proxy: shipped <c>config.yaml</c> mounted read-only, keys as secret parameters,
    /// its own database, and a liveness probe that makes no LLM call.
    /// </summary>
    public static IResourceBuilder<ContainerResource> AddLiteLlm(
        this IDistributedApplicationBuilder builder,
        IResourceBuilder<PostgresDatabaseResource> database,
        IResourceBuilder<ParameterResource> masterKey,
        IResourceBuilder<ParameterResource> saltKey,
        IResourceBuilder<ParameterResource> providerApiKey) =>
        builder.AddContainer(ResourceNames.LiteLlm, LiteLlmImage, LiteLlmTag)
            .WithImageRegistry(LiteLlmRegistry)
            .WithBindMount(Path.Combine(builder.AppHostDirectory, "litellm", "config.yaml"), "/app/config.yaml", isReadOnly: true)
            .WithArgs("--config", "/app/config.yaml", "--port", "4000")
            .WithHttpEndpoint(targetPort: 4000, name: "http")
            .WithEnvironment("DATABASE_URL", database.Resource.UriExpression)
            .WithEnvironment("LITELLM_MASTER_KEY", LiteLlmMasterKey(masterKey))
            .WithEnvironment("LITELLM_SALT_KEY", saltKey)
            .WithEnvironment("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .WithEnvironment("OPENAI_API_KEY", providerApiKey)
            .WithHttpHealthCheck("/health/liveliness")
            .WithReference(database)
            .WaitFor(database);

    /// <summary>
    /// The API's metered LLM endpoint as a container reaches it (the API runs on the host): what the API tells Letta
    /// as each user's provider base URL.
    /// </summary>
    public static ReferenceExpression InternalLlmUrlFromContainers(IResourceBuilder<ProjectResource> api) =>
        ReferenceExpression.Create($"http://host.docker.internal:{api.GetEndpoint("http").Property(EndpointProperty.Port)}{InternalLlmPath}");

    /// <summary>LiteLLM requires its master key to start with <c>sk-</c>.</summary>
    public static ReferenceExpression LiteLlmMasterKey(IResourceBuilder<ParameterResource> masterKey) =>
        ReferenceExpression.Create($"sk-{masterKey}");

    /// <summary>
    /// The Letta server on its own database; its LLM base URL is the API's metering endpoint,
    /// authenticated with the internal secret, so every LLM call Letta makes is charged to a user.
    /// </summary>
    public static IResourceBuilder<ContainerResource> AddLetta(
        this IDistributedApplicationBuilder builder,
        IResourceBuilder<PostgresDatabaseResource> database,
        IResourceBuilder<ProjectResource> api,
        IResourceBuilder<ParameterResource> serverPassword,
        IResourceBuilder<ParameterResource> internalSecret) =>
        builder.AddContainer(ResourceNames.Letta, LettaImage, LettaTag)
            .WithHttpEndpoint(targetPort: 8283, name: "http")
            .WithEnvironment("LETTA_PG_URI", database.Resource.UriExpression)
            .WithEnvironment("SECURE", "true")
            .WithEnvironment("LETTA_SERVER_PASSWORD", serverPassword)
            .WithEnvironment("OPENAI_BASE_URL", ReferenceExpression.Create($"{api.GetEndpoint("http")}{InternalLlmPath}"))
            .WithEnvironment("OPENAI_API_KEY", internalSecret)
            .WithHttpHealthCheck("/v1/health/")
            .WithReference(database)
            .WaitFor(database);

    /// <summary>Says which profile runs and why, and, once the gateway is healthy, where it listens.</summary>
    public static void AnnounceProfile(this IDistributedApplicationBuilder builder, AiChatProfile profile, string reason, IResourceBuilder<ProjectResource> gateway)
    {
        builder.Eventing.Subscribe<BeforeStartEvent>((e, _) =>
        {
            e.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AiChat")
                .LogInformation("AiChat profile: {Profile} ({Reason})", profile.ToString().ToLowerInvariant(), reason);
            return Task.CompletedTask;
        });

        builder.Eventing.Subscribe<ResourceReadyEvent>(gateway.Resource, (e, _) =>
        {
            e.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AiChat")
                .LogInformation("AiChat is ready: the gateway listens on {Url}", gateway.GetEndpoint("http").Url);
            return Task.CompletedTask;
        });
    }
}
