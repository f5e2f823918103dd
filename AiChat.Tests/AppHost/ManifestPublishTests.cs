using System.Diagnostics;
using System.Text.Json;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.AppHost;

/// <summary>
/// The container deploy's input: the AppHost's manifest (<c>--operation publish --publisher manifest</c>), published
/// for real in both profiles by the AppHost's own build, then read: the resources, their images, the secret
/// parameters, the API's store wiring, and that only the gateway is reachable from outside.
/// </summary>
[Trait("Category", "AppHost")]
public sealed class ManifestPublishTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheEmbeddedManifestHasTheApiAndTheGatewayAndOnlyTheGatewayIsExternal()
    {
        var resources = await PublishAsync("embedded");

        Assert.Equal(["api", "gateway"], resources.Keys.Order(StringComparer.Ordinal));
        Assert.All(resources.Values, resource => Assert.Equal("project.v0", resource.GetProperty("type").GetString()));
        Assert.Equal(["gateway"], External(resources));
        Assert.Equal("{api.bindings.http.url}", resources["gateway"].GetProperty("env").GetProperty("services__api__http__0").GetString());
    }

    [Fact]
    public async Task TheFullManifestPinsItsImagesAsksForItsSecretsAndExposesOnlyTheGateway()
    {
        var resources = await PublishAsync("full");

        var images = resources.Where(r => r.Value.GetProperty("type").GetString() == "container.v0")
            .ToDictionary(r => r.Key, r => r.Value.GetProperty("image").GetString());
        Assert.Equal(new Dictionary<string, string?>
        {
            ["postgres"] = "docker.io/pgvector/pgvector:0.8.1-pg17",
            ["litellm"] = "ghcr.io/berriai/litellm-database:v1.80.11-stable.1",
            ["letta"] = "letta/letta:0.16.8",
        }, images);
        var secrets = resources.Where(r => r.Value.GetProperty("type").GetString() == "parameter.v0"
                && r.Value.GetProperty("inputs").GetProperty("value").TryGetProperty("secret", out var secret) && secret.GetBoolean())
            .Select(r => r.Key).Order(StringComparer.Ordinal);
        Assert.Equal(["internal-llm-secret", "letta-password", "litellm-master-key", "litellm-salt-key", "openai-api-key", "postgres-password", "token-signing-secret"], secrets);
        Assert.Equal(["gateway"], External(resources));
        Assert.Equal("{aichatdb.connectionString}", resources["api"].GetProperty("env").GetProperty("ConnectionStrings__aichatdb").GetString());
        Assert.Equal("{postgres.connectionString};Database=aichatdb", resources["aichatdb"].GetProperty("connectionString").GetString());
    }

    private static List<string> External(Dictionary<string, JsonElement> resources) =>
        resources.Where(r => r.Value.TryGetProperty("bindings", out var bindings)
                && bindings.EnumerateObject().Any(b => b.Value.TryGetProperty("external", out var external) && external.GetBoolean()))
            .Select(r => r.Key).Order(StringComparer.Ordinal).ToList();

    private static async Task<Dictionary<string, JsonElement>> PublishAsync(string profile)
    {
        var output = Path.Combine(Path.GetTempPath(), $"aichat-manifest-{profile}-{Guid.NewGuid():N}");
        var dll = ApiProcess.BuildOutput("AiChat.AppHost");
        var start = new ProcessStartInfo("dotnet", [dll, "--operation", "publish", "--publisher", "manifest", "--output-path", output, "--profile", profile])
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(Ct);
            var stderr = process.StandardError.ReadToEndAsync(Ct);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromMinutes(2));
            await process.WaitForExitAsync(deadline.Token);
            Assert.True(process.ExitCode == 0, $"publish ({profile}) exited {process.ExitCode}: {await stdout}{await stderr}");
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "aspire-manifest.json"), Ct));
            return manifest.RootElement.GetProperty("resources").EnumerateObject().ToDictionary(r => r.Name, r => r.Value.Clone());
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}
