using System.Net;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Llm;

/// <summary>
/// A turn writes no Information line per LLM call (HttpClient, Polly) or per store command (Npgsql) at the API's default
/// levels (appsettings.json); the lines are there when asked for.
/// </summary>
[Collection(nameof(LlmLoggingTests))]
[CollectionDefinition(nameof(LlmLoggingTests), DisableParallelization = true)]
[Trait("Category", "Llm")]
public sealed class LlmLoggingTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnWritesNoHttpClientResilienceOrStoreCommandLineAtTheDefaultLogLevels(StoreProvider provider)
    {
        var before = LogSink.AllLines.Count;
        var lines = await LinesAboutOneTurnAsync(provider, levelOverride: null);

        Assert.Empty(lines);
        // Npgsql's lines name no address of this test; this collection runs alone (the secret scan, which turns every
        // level down to Trace, runs before or after it), so no Information line of Npgsql may arrive while it runs.
        Assert.DoesNotContain(LogSink.AllLines.Skip(before), line => line.StartsWith("Information Npgsql.", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheHttpClientLinesComeBackWhenTheirCategoryIsLoweredToInformation(StoreProvider provider)
    {
        // The detector's own check: the same turn with the category turned up shows the lines the default now hides.
        var lines = await LinesAboutOneTurnAsync(provider, levelOverride: "Information");

        Assert.Contains(lines, line => line.StartsWith("Information System.Net.Http.HttpClient.llm.", StringComparison.Ordinal));
    }

    // Lines of the HttpClient and Polly categories that name this test's own fake LLM (other tests log into the same sink).
    private async Task<List<string>> LinesAboutOneTurnAsync(StoreProvider provider, string? levelOverride)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-logging-" + Guid.NewGuid().ToString("N")));
        var api = new ApiFactory()
            .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
            .WithSetting("Llm:ApiKey", llm.ApiKey)
            .WithSetting("Llm:Model", "gpt-4o-mini");
        if (levelOverride is not null)
        {
            api.WithSetting("Logging:LogLevel:System.Net.Http.HttpClient", levelOverride);
        }

        await using var running = provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
        using var client = running.CreateClient();
        var pair = await client.RegisterAsync();

        var turn = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello")), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        Assert.NotEmpty(llm.Requests);
        var port = llm.BaseUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return LogSink.AllLines
            .Where(line => line.Contains("System.Net.Http.HttpClient", StringComparison.Ordinal) || line.Contains(" Polly", StringComparison.Ordinal))
            .Where(line => line.Contains(":" + port + "/", StringComparison.Ordinal))
            .ToList();
    }
}
