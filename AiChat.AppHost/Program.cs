using AiChat;
using AiChat.AppHost;
using Microsoft.Extensions.Configuration;

var builder = DistributedApplication.CreateBuilder(args);

// Parameters
var (profile, reason) = Profiles.Choose(builder.Configuration);
var gatewayPort = builder.Configuration.GetValue("Parameters:gateway-port", 5080);
var agentRuntime = builder.Configuration["Parameters:agent-runtime"] ?? "Letta";
var apiReplicas = builder.Configuration.GetValue("Parameters:api-replicas", 1);
var givenPostgres = !string.IsNullOrWhiteSpace(builder.Configuration["Parameters:postgres"]);
if (apiReplicas < 1 || (apiReplicas > 1 && profile == AiChatProfile.Embedded && !givenPostgres))
{
    // Several instances share the store: one Postgres (the full profile's, or one given), never one SQLite file.
    throw new InvalidOperationException(
        $"Parameters:api-replicas is {apiReplicas}: it is at least 1, and above 1 it needs Postgres (the full profile, or --Parameters:postgres \"Host=…\").");
}

// Services
var api = builder.AddProject<Projects.AiChat_Api>(ResourceNames.Api)
    .WithHttpHealthCheck("/health");
if (apiReplicas > 1)
{
    api.WithReplicas(apiReplicas);
}

// A Postgres given without containers (embedded profile): the API's store, and what replicas share
if (profile == AiChatProfile.Embedded && givenPostgres)
{
    api.WithEnvironment($"ConnectionStrings__{ResourceNames.AiChatDb}", builder.AddParameter("postgres", secret: true));
}

// Secrets every instance on a shared (Postgres) store must agree on: generated once and kept (user secrets), so each
// replica signs and accepts the same tokens and issues the same metered-LLM keys. On SQLite alone, the data folder's.
var internalSecret = profile == AiChatProfile.Full || givenPostgres
    ? builder.AddParameter("internal-llm-secret", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true)
    : null;
if (internalSecret is not null)
{
    api.WithEnvironment("InternalLlm__Secret", internalSecret)
        .WithEnvironment("Auth__SigningKeySecret", builder.AddParameter("token-signing-secret", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true));
}

// Identity: Supabase Auth when its URL is given, else the API's built-in accounts (either profile)
if (!string.IsNullOrWhiteSpace(builder.Configuration["Parameters:supabase-url"]))
{
    api.WithEnvironment("Supabase__Url", builder.AddParameter("supabase-url"))
        .WithEnvironment("Supabase__AnonKey", builder.AddParameter("supabase-anon-key", secret: true));
}

// Infrastructure (full profile only: nothing here starts a container in the embedded profile)
if (profile == AiChatProfile.Full)
{
    var liteLlmMasterKey = builder.AddParameter("litellm-master-key", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true);
    var liteLlmSaltKey = builder.AddParameter("litellm-salt-key", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true);
    var providerApiKey = builder.AddParameter("openai-api-key", secret: true);

    var postgres = builder.AddAiChatPostgres();
    var aichatdb = postgres.AddDatabase(ResourceNames.AiChatDb);
    var liteLlmDb = postgres.AddDatabase(ResourceNames.LiteLlmDb, "litellm");
    var liteLlm = builder.AddLiteLlm(liteLlmDb, liteLlmMasterKey, liteLlmSaltKey, providerApiKey);

    api.WithReference(aichatdb).WaitFor(aichatdb)
        .WithReference(liteLlm.GetEndpoint("http")).WaitFor(liteLlm)
        .WithEnvironment("LiteLlm__MasterKey", Extensions.LiteLlmMasterKey(liteLlmMasterKey))
        .WithEnvironment("LiteLlm__BaseUrl", liteLlm.GetEndpoint("http"))
        .WithEnvironment("Llm__Endpoint", ReferenceExpression.Create($"{liteLlm.GetEndpoint("http")}/v1"))
        .WithEnvironment("Agents__Runtime", agentRuntime);

    if (agentRuntime.Equals("Letta", StringComparison.OrdinalIgnoreCase))
    {
        var lettaPassword = builder.AddParameter("letta-password", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true, persist: true);
        var lettaDb = postgres.AddDatabase(ResourceNames.LettaDb, "letta");
        var letta = builder.AddLetta(lettaDb, api, lettaPassword, internalSecret!);

        api.WithReference(letta.GetEndpoint("http")).WaitFor(letta)
            .WithEnvironment("Letta__Password", lettaPassword)
            .WithEnvironment("Letta__LlmBaseUrl", Extensions.InternalLlmUrlFromContainers(api));
    }
}

// Gateway: the only external endpoint
var gateway = builder.AddProject<Projects.AiChat_Gateway>(ResourceNames.Gateway)
    .WithEndpoint("http", endpoint => endpoint.Port = gatewayPort)
    .WithExternalHttpEndpoints()
    .WithHttpHealthCheck("/alive")
    .WithReference(api).WaitFor(api);

builder.AnnounceProfile(profile, reason, gateway);

builder.Build().Run();
