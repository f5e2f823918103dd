using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Agents;

/// <summary>The memory change log with <c>Agents:Runtime=Letta</c>: writes made through the API are recorded, and a revert reaches Letta.</summary>
[Trait("Category", "Agents")]
public sealed class LettaMemoryChangeTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnUpdateOfALettaBlockIsRecordedAndItsRevertRestoresLettasBlock(StoreProvider provider)
    {
        await using var letta = await FakeLetta.StartAsync(LogSink.Secret("letta-" + Guid.NewGuid().ToString("N")));
        await using var llm = await ChatCompletionsResponder.StartAsync();
        await using var api = new ApiFactory()
            .WithSetting("Agents:Runtime", "Letta")
            .WithSetting("Letta:BaseUrl", letta.Url.ToString())
            .WithSetting("Letta:Password", letta.Password)
            .WithSetting("Letta:LlmBaseUrl", llm.BaseUrl);
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var updated = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory", pair.AccessToken, new { blocks = new[] { new { label = "human", value = "Name: Ana\nLives in Porto" } } });
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        var change = Assert.Single((await ChangesAsync(client, pair.AccessToken)).EnumerateArray());
        Assert.Equal(("human", "Name: Ana", "Name: Ana\nLives in Porto", "user"), Describe(change));

        var reverted = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/agent/memory/changes/{change.GetProperty("id").GetGuid()}/revert", pair.AccessToken);

        Assert.Equal(HttpStatusCode.OK, reverted.StatusCode);
        Assert.Equal("Name: Ana", Assert.Single(letta.Agents).Blocks.Single(b => b.Label == "human").Value);
        var changes = (await ChangesAsync(client, pair.AccessToken)).EnumerateArray().ToList();
        Assert.Equal(2, changes.Count);
        Assert.Equal(("human", "Name: Ana\nLives in Porto", "Name: Ana", "revert"), Describe(changes[0]));
    }

    private static (string?, string?, string?, string?) Describe(JsonElement change) => (
        change.GetProperty("label").GetString(), change.GetProperty("old_value").GetString(), change.GetProperty("new_value").GetString(),
        change.GetProperty("source").GetProperty("kind").GetString());

    private static async Task<JsonElement> ChangesAsync(HttpClient client, string token)
    {
        var response = await client.GetWithTokenAsync("/api/v1/agent/memory/changes", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("changes");
    }
}
