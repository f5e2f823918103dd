extern alias apphost;

using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using AppHostExtensions = apphost::AiChat.AppHost.Extensions;

namespace AiChat.Tests.AppHost;

/// <summary>The AppHost's resource graph in both profiles, built without starting anything.</summary>
[Trait("Category", "AppHost")]
public sealed class AppHostModelTests
{
    [Fact]
    public async Task EmbeddedProfileRunsTheApiAndGatewayAndNoContainer()
    {
        await using var builder = await ModelAsync("embedded");

        Assert.Equal([ResourceNames.Api, ResourceNames.Gateway], builder.Resources.OfType<ProjectResource>().Select(r => r.Name).Order());
        Assert.DoesNotContain(builder.Resources, r => r is ContainerResource);
        Assert.Empty(await EnvironmentAsync(builder, ResourceNames.Api, name => name.StartsWith("ConnectionStrings__", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task FullProfileRunsPostgresLiteLlmAndLettaFromPinnedImages()
    {
        await using var builder = await ModelAsync("full");

        var images = builder.Resources.OfType<ContainerResource>()
            .ToDictionary(r => r.Name, r => r.Annotations.OfType<ContainerImageAnnotation>().Last());
        Assert.Equal([ResourceNames.Letta, ResourceNames.LiteLlm, ResourceNames.Postgres], images.Keys.Order());
        Assert.Equal(("pgvector/pgvector", "0.8.1-pg17"), (images[ResourceNames.Postgres].Image, images[ResourceNames.Postgres].Tag));
        Assert.Equal(("ghcr.io", "berriai/litellm-database"), (images[ResourceNames.LiteLlm].Registry, images[ResourceNames.LiteLlm].Image));
        Assert.Equal(("letta/letta", "0.16.8"), (images[ResourceNames.Letta].Image, images[ResourceNames.Letta].Tag));
        Assert.All(images.Values, image => Assert.Matches(@"^v?\d+\.\d+", image.Tag ?? ""));
    }

    [Fact]
    public async Task FullProfileHasOneDatabasePerServiceOnAPersistentServer()
    {
        await using var builder = await ModelAsync("full");

        var databases = builder.Resources.OfType<PostgresDatabaseResource>().ToDictionary(d => d.Name, d => d.DatabaseName);
        Assert.Equal(new Dictionary<string, string>
        {
            [ResourceNames.AiChatDb] = "aichatdb",
            [ResourceNames.LiteLlmDb] = "litellm",
            [ResourceNames.LettaDb] = "letta",
        }, databases);

        var postgres = Resource<PostgresServerResource>(builder, ResourceNames.Postgres);
        Assert.Contains(postgres.Annotations.OfType<ContainerMountAnnotation>(),
            mount => mount.Type == ContainerMountType.Volume && mount.Target == "/var/lib/postgresql/data");
    }

    [Theory]
    [InlineData("embedded")]
    [InlineData("full")]
    public async Task OnlyTheGatewayIsReachableFromOutside(string profile)
    {
        await using var builder = await ModelAsync(profile);

        var external = builder.Resources
            .SelectMany(r => r.Annotations.OfType<EndpointAnnotation>().Where(e => e.IsExternal).Select(e => (r.Name, e.Port)))
            .ToList();
        Assert.Equal([(ResourceNames.Gateway, (int?)5080)], external);
    }

    [Fact]
    public async Task TheGatewayPortCanBeChosen()
    {
        await using var builder = await ModelAsync("embedded", "--Parameters:gateway-port", "6090");

        var gateway = builder.Resources.Single(r => r.Name == ResourceNames.Gateway);
        Assert.Equal(6090, gateway.Annotations.OfType<EndpointAnnotation>().Single(e => e.Name == "http").Port);
    }

    [Fact]
    public async Task ServicesStartAfterWhatTheyDependOn()
    {
        await using var builder = await ModelAsync("full");

        // Waiting for a database also waits for its server.
        Assert.Equal([ResourceNames.AiChatDb, ResourceNames.Letta, ResourceNames.LiteLlm, ResourceNames.Postgres], WaitsFor(builder, ResourceNames.Api));
        Assert.Equal([ResourceNames.Api], WaitsFor(builder, ResourceNames.Gateway));
        Assert.Equal([ResourceNames.LiteLlmDb, ResourceNames.Postgres], WaitsFor(builder, ResourceNames.LiteLlm));
        Assert.Equal([ResourceNames.LettaDb, ResourceNames.Postgres], WaitsFor(builder, ResourceNames.Letta));
        // Letta calls the API only when a message is sent: waiting for it would be a cycle.
        Assert.DoesNotContain(ResourceNames.Api, WaitsFor(builder, ResourceNames.Letta));
    }

    [Theory]
    [InlineData("embedded", ResourceNames.Api)]
    [InlineData("embedded", ResourceNames.Gateway)]
    [InlineData("full", ResourceNames.Api)]
    [InlineData("full", ResourceNames.Gateway)]
    [InlineData("full", ResourceNames.Postgres)]
    [InlineData("full", ResourceNames.LiteLlm)]
    [InlineData("full", ResourceNames.Letta)]
    public async Task EveryServiceHasAHealthCheck(string profile, string resource)
    {
        await using var builder = await ModelAsync(profile);

        Assert.NotEmpty(builder.Resources.Single(r => r.Name == resource).Annotations.OfType<HealthCheckAnnotation>());
    }

    [Fact]
    public async Task LiteLlmGetsItsConfigDatabaseAndSecretKeys()
    {
        await using var builder = await ModelAsync("full");
        var liteLlm = Resource<ContainerResource>(builder, ResourceNames.LiteLlm);

        var mount = Assert.Single(liteLlm.Annotations.OfType<ContainerMountAnnotation>());
        Assert.Equal(("/app/config.yaml", true), (mount.Target, mount.IsReadOnly));
        Assert.True(File.Exists(mount.Source), $"the shipped LiteLLM config exists at {mount.Source}");
        Assert.Contains("include_cost_in_streaming_usage: true", await File.ReadAllTextAsync(mount.Source!, TestContext.Current.CancellationToken));
        Assert.Equal(4000, liteLlm.Annotations.OfType<EndpointAnnotation>().Single().TargetPort);

        var environment = await EnvironmentAsync(builder, ResourceNames.LiteLlm);
        Assert.Equal(PostgresUri("litellm"), environment["DATABASE_URL"]);
        Assert.Equal("sk-{litellm-master-key.value}", environment["LITELLM_MASTER_KEY"]);
        Assert.Equal("{litellm-salt-key.value}", environment["LITELLM_SALT_KEY"]);
        Assert.Equal("{openai-api-key.value}", environment["OPENAI_API_KEY"]);
        Assert.Equal("True", environment["LITELLM_LOCAL_MODEL_COST_MAP"]);
        AssertSecret(builder, "litellm-master-key", "litellm-salt-key", "openai-api-key");
    }

    [Fact]
    public async Task LettaSendsItsLlmCallsToTheApisMeteringEndpoint()
    {
        await using var builder = await ModelAsync("full");

        var environment = await EnvironmentAsync(builder, ResourceNames.Letta);
        Assert.Equal(PostgresUri("letta"), environment["LETTA_PG_URI"]);
        Assert.Equal("{api.bindings.http.url}" + AppHostExtensions.InternalLlmPath, environment["OPENAI_BASE_URL"]);
        Assert.Equal("{internal-llm-secret.value}", environment["OPENAI_API_KEY"]);
        Assert.Equal("true", environment["SECURE"]);
        Assert.Equal("{letta-password.value}", environment["LETTA_SERVER_PASSWORD"]);
        Assert.Equal(8283, Resource<ContainerResource>(builder, ResourceNames.Letta).Annotations.OfType<EndpointAnnotation>().Single().TargetPort);
        AssertSecret(builder, "internal-llm-secret", "letta-password");
    }

    [Fact]
    public async Task TheApiIsWiredToItsDatabaseLiteLlmAndLetta()
    {
        await using var builder = await ModelAsync("full");

        var environment = await EnvironmentAsync(builder, ResourceNames.Api);
        Assert.Equal("{aichatdb.connectionString}", environment["ConnectionStrings__aichatdb"]);
        Assert.Equal("{litellm.bindings.http.url}", environment["services__litellm__http__0"]);
        Assert.Equal("{letta.bindings.http.url}", environment["services__letta__http__0"]);
        Assert.Equal("sk-{litellm-master-key.value}", environment["LiteLlm__MasterKey"]);
        Assert.Equal("{litellm.bindings.http.url}", environment["LiteLlm__BaseUrl"]);
        Assert.Equal("{litellm.bindings.http.url}/v1", environment["Llm__Endpoint"]);
        Assert.Equal("{internal-llm-secret.value}", environment["InternalLlm__Secret"]);
        Assert.Equal("{token-signing-secret.value}", environment["Auth__SigningKeySecret"]);
        Assert.Equal("{letta-password.value}", environment["Letta__Password"]);
        Assert.Equal("http://host.docker.internal:{api.bindings.http.port}/internal/llm/v1", environment["Letta__LlmBaseUrl"]);
        Assert.Equal("Letta", environment["Agents__Runtime"]);

        var gateway = await EnvironmentAsync(builder, ResourceNames.Gateway);
        Assert.Equal("{api.bindings.http.url}", gateway["services__api__http__0"]);
    }

    [Fact]
    public async Task WithTheBuiltInRuntimeNoLettaContainerIsDeclared()
    {
        await using var builder = await ModelAsync("full", "--Parameters:agent-runtime", "BuiltIn");

        Assert.DoesNotContain(builder.Resources, r => r.Name == ResourceNames.Letta);
        Assert.Equal("BuiltIn", (await EnvironmentAsync(builder, ResourceNames.Api))["Agents__Runtime"]);
    }

    [Fact]
    public async Task ASupabaseUrlSwitchesTheApiToSupabaseAuth()
    {
        await using var builder = await ModelAsync("embedded", "--Parameters:supabase-url", "https://ref.supabase.co", "--Parameters:supabase-anon-key", "anon");

        var environment = await EnvironmentAsync(builder, ResourceNames.Api);
        Assert.Equal("{supabase-url.value}", environment["Supabase__Url"]);
        Assert.Equal("{supabase-anon-key.value}", environment["Supabase__AnonKey"]);
        AssertSecret(builder, "supabase-anon-key");
    }

    [Fact]
    public async Task WithoutASupabaseUrlTheApiKeepsItsBuiltInAccounts()
    {
        await using var builder = await ModelAsync("full");

        Assert.DoesNotContain(await EnvironmentAsync(builder, ResourceNames.Api), pair => pair.Key.StartsWith("Supabase__", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheEmbeddedProfileRunsReplicasOfTheApiOnAGivenPostgres()
    {
        const string given = "Host=db.internal;Database=aichat;Username=aichat;Password=secret";
        await using var builder = await ModelAsync("embedded", "--Parameters:api-replicas", "3", "--Parameters:postgres", given);

        var api = Resource<ProjectResource>(builder, ResourceNames.Api);
        Assert.Equal(3, api.Annotations.OfType<ReplicaAnnotation>().Single().Replicas);
        var environment = await EnvironmentAsync(builder, ResourceNames.Api);
        Assert.Equal("{postgres.value}", environment[$"ConnectionStrings__{ResourceNames.AiChatDb}"]);
        // The replicas agree on the token signing key and the metered-LLM keys: one generated secret each, not a data folder each.
        Assert.Equal("{token-signing-secret.value}", environment["Auth__SigningKeySecret"]);
        Assert.Equal("{internal-llm-secret.value}", environment["InternalLlm__Secret"]);
        AssertSecret(builder, "token-signing-secret", "internal-llm-secret");
        var parameter = Resource<ParameterResource>(builder, "postgres");
        Assert.True(parameter.Secret);
        Assert.Equal(given, await ((IValueProvider)parameter).GetValueAsync(TestContext.Current.CancellationToken));
        Assert.DoesNotContain(builder.Resources, r => r is ContainerResource);
    }

    [Fact]
    public async Task OnSqliteAloneTheApiKeepsItsSecretsInTheDataFolder()
    {
        await using var builder = await ModelAsync("embedded");

        var environment = await EnvironmentAsync(builder, ResourceNames.Api);
        Assert.DoesNotContain("Auth__SigningKeySecret", environment.Keys);
        Assert.DoesNotContain("InternalLlm__Secret", environment.Keys);
    }

    [Fact]
    public async Task OneApiByDefault()
    {
        await using var builder = await ModelAsync("full");

        Assert.Empty(Resource<ProjectResource>(builder, ResourceNames.Api).Annotations.OfType<ReplicaAnnotation>());
    }

    [Theory]
    [InlineData("embedded", "2")]
    [InlineData("full", "0")]
    public async Task ReplicasOnOneSqliteFileOrFewerThanOneAreRefused(string profile, string replicas)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(async () => await ModelAsync(profile, "--Parameters:api-replicas", replicas));

        Assert.Contains($"Parameters:api-replicas is {replicas}", error.ToString());
    }

    private static async Task<IDistributedApplicationTestingBuilder> ModelAsync(string profile, params string[] args) =>
        await DistributedApplicationTestingBuilder.CreateAsync<apphost::Projects.AiChat_AppHost>(
            ["--profile", profile, .. args],
            (options, _) => options.DisableDashboard = true,
            TestContext.Current.CancellationToken);

    private static string PostgresUri(string database) =>
        $"postgresql://postgres:{{postgres-password.value}}@{{postgres.bindings.tcp.host}}:{{postgres.bindings.tcp.port}}/{database}";

    private static T Resource<T>(IDistributedApplicationTestingBuilder builder, string name) where T : IResource =>
        builder.Resources.OfType<T>().Single(r => r.Name == name);

    private static string[] WaitsFor(IDistributedApplicationTestingBuilder builder, string name) =>
        builder.Resources.Single(r => r.Name == name).Annotations.OfType<WaitAnnotation>().Select(w => w.Resource.Name).Order().ToArray();

    private static void AssertSecret(IDistributedApplicationTestingBuilder builder, params string[] parameters) =>
        Assert.All(parameters, name => Assert.True(Resource<ParameterResource>(builder, name).Secret, $"{name} is a secret parameter"));

    // Publish mode renders references as expressions ({resource.property}), so the wiring is visible without running anything.
    private static async Task<Dictionary<string, string>> EnvironmentAsync(IDistributedApplicationTestingBuilder builder, string name, Func<string, bool>? filter = null)
    {
        var resource = builder.Resources.OfType<IResourceWithEnvironment>().Single(r => r.Name == name);
#pragma warning disable CS0618 // Its successor (ExecutionConfigurationBuilder) needs a running execution context; this reads the model as declared.
        var values = await resource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Publish);
#pragma warning restore CS0618
        return values.Where(pair => filter?.Invoke(pair.Key) ?? true).ToDictionary(pair => pair.Key, pair => pair.Value);
    }
}
