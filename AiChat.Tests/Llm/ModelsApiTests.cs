using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Llm;

/// <summary><c>GET /api/v1/models</c> and the catalogue behind it: what is listed, what a turn uses, and what it is charged.</summary>
[Trait("Category", "Llm")]
public sealed class ModelsApiTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WithNothingConfiguredTheCatalogueIsTheOfflineModel(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory(), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var models = await ListAsync(client, pair.AccessToken);

        Assert.Equal([new Listed("aichat-offline", "aichat-offline", 128_000, 1024, 0m, 0m, true)], models);
        Assert.True(await OfflineAsync(client, pair.AccessToken), "no endpoint: the list says the offline model answers");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WithNothingConfiguredTheCatalogueIsTodaysModelAtItsPrice(StoreProvider provider)
    {
        await using var api = await OnAsync(new ApiFactory()
            .WithSetting("Llm:Endpoint", "http://127.0.0.1:9/v1")
            .WithSetting("Llm:Model", "gpt-4o-mini")
            .WithSetting("Llm:ContextWindow", "8000")
            .WithSetting("Llm:MaxOutputTokens", "300"), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var models = await ListAsync(client, pair.AccessToken);

        Assert.Equal([new Listed("gpt-4o-mini", "gpt-4o-mini", 8000, 300, 0.15m, 0.60m, true)], models);
        Assert.False(await OfflineAsync(client, pair.AccessToken), "an endpoint is configured: a real model answers");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AConfiguredCatalogueIsListedDefaultFirstWithExactFields(StoreProvider provider)
    {
        await using var api = await OnAsync(ThreeModels(new ApiFactory()), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var response = await client.GetWithTokenAsync("/api/v1/models", pair.AccessToken);
        var models = await ListAsync(client, pair.AccessToken);

        Assert.Equal(
            """{"id":"house-model","name":"House model","context_window":32000,"max_output_tokens":2000,"input_per_million_usd":1.25,"output_per_million_usd":5,"default":true}""",
            (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("models")[0].GetRawText());
        Assert.Equal(
            [
                new Listed("house-model", "House model", 32_000, 2_000, 1.25m, 5m, true),
                new Listed("gpt-4o-mini", "GPT-4o mini", 128_000, 16_384, 0.15m, 0.60m, false),
                new Listed("gpt-4.1-nano", "gpt-4.1-nano", 1_047_576, 32_768, 0.2m, 0.8m, false),
            ],
            models);
        var status = await (await client.GetWithTokenAsync("/api/v1/agent/status", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("house-model", status.GetProperty("model").GetString());
        Assert.Equal(32_000, status.GetProperty("context").GetProperty("window").GetInt32());
    }

    // This and the next two read no store: a refused request, the OpenAPI document, options validated at start.
    [Fact]
    public async Task TheCatalogueNeedsAToken()
    {
        await using var api = new ApiFactory();
        using var client = api.CreateClient();

        var response = await client.GetAsync("/api/v1/models", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task TheCatalogueIsInTheOpenApiDocument()
    {
        await using var api = new ApiFactory();
        using var client = api.CreateClient();

        var document = await client.GetFromJsonAsync<JsonElement>("/openapi/v1.json", TestContext.Current.CancellationToken);

        Assert.True(document.GetProperty("paths").GetProperty("/api/v1/models").TryGetProperty("get", out _));
    }

    [Fact]
    public async Task AnInvalidCatalogueStopsTheApiAtStartWithTheReason()
    {
        await using var api = ThreeModels(new ApiFactory()).WithSetting("Llm:Models:0:Default", "true");

        var error = Assert.Throws<OptionsValidationException>(() => api.CreateClient());

        Assert.Equal(["Llm:Models must mark exactly one model as Default; 2 are."], error.Failures);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnAndAMeteredCallOnTheCatalogueDefaultAreChargedAtTheCataloguesPrice(StoreProvider provider)
    {
        await using var llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-models-" + Guid.NewGuid().ToString("N")));
        llm.DefaultReply = FakeReply.Text("priced by the catalogue", promptTokens: 1000, completionTokens: 100);
        await using var api = await OnAsync(ThreeModels(new ApiFactory())
            .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
            .WithSetting("Llm:ApiKey", llm.ApiKey)
            .WithSetting("Llm:Model", "gpt-4o-mini")
            .WithSetting("Llm:MaxOutputTokens", "300"), provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, pair.AccessToken); // the turn's own call only: no title call
        var key = LogSink.Secret(api.Services.GetRequiredService<IInternalLlmKeys>().KeyFor(pair.UserId));

        var turn = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello")), TestContext.Current.CancellationToken);
        var proxied = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/internal/llm/v1/chat/completions")
        {
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) },
            Content = new StringContent("""{"model":"house-model","messages":[{"role":"user","content":"hello"}]}""", Encoding.UTF8, "application/json"),
        }, TestContext.Current.CancellationToken);

        var cost = (1000 * 1.25m + 100 * 5m) / 1_000_000m;
        Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        Assert.Equal(HttpStatusCode.OK, proxied.StatusCode);
        var answer = await turn.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(cost, answer.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        var budget = await (await client.GetWithTokenAsync("/api/v1/user/budget", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(2 * cost, budget.GetProperty("spent_usd").GetDecimal());
        Assert.All(llm.Requests, request => Assert.Equal(("house-model", 2000), (request.Model, request.MaxTokens)));
        Assert.Equal(2, llm.Requests.Count);
    }

    /// <summary>A catalogue's own price wins over <c>Billing:Prices</c>; a model without one is priced by the table (shipped or configured).</summary>
    private static ApiFactory ThreeModels(ApiFactory api) => api
        .WithSetting("Llm:Models:0:Id", "gpt-4o-mini")
        .WithSetting("Llm:Models:0:Name", "GPT-4o mini")
        .WithSetting("Llm:Models:0:ContextWindow", "128000")
        .WithSetting("Llm:Models:0:MaxOutputTokens", "16384")
        .WithSetting("Llm:Models:1:Id", "house-model")
        .WithSetting("Llm:Models:1:Name", "House model")
        .WithSetting("Llm:Models:1:ContextWindow", "32000")
        .WithSetting("Llm:Models:1:MaxOutputTokens", "2000")
        .WithSetting("Llm:Models:1:InputPerMillionUsd", "1.25")
        .WithSetting("Llm:Models:1:OutputPerMillionUsd", "5")
        .WithSetting("Llm:Models:1:Default", "true")
        .WithSetting("Llm:Models:2:Id", "gpt-4.1-nano")
        .WithSetting("Llm:Models:2:ContextWindow", "1047576")
        .WithSetting("Llm:Models:2:MaxOutputTokens", "32768")
        .WithSetting("Billing:Prices:house-model:InputPerMillionUsd", "9")
        .WithSetting("Billing:Prices:house-model:OutputPerMillionUsd", "9")
        .WithSetting("Billing:Prices:gpt-4.1-nano:InputPerMillionUsd", "0.2")
        .WithSetting("Billing:Prices:gpt-4.1-nano:OutputPerMillionUsd", "0.8");

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;

    private static async Task<List<Listed>> ListAsync(HttpClient client, string token)
    {
        var response = await client.GetWithTokenAsync("/api/v1/models", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return body.GetProperty("models").EnumerateArray().Select(model => new Listed(
            model.GetProperty("id").GetString()!,
            model.GetProperty("name").GetString()!,
            model.GetProperty("context_window").GetInt32(),
            model.GetProperty("max_output_tokens").GetInt32(),
            model.GetProperty("input_per_million_usd").GetDecimal(),
            model.GetProperty("output_per_million_usd").GetDecimal(),
            model.GetProperty("default").GetBoolean())).ToList();
    }

    private static async Task<bool> OfflineAsync(HttpClient client, string token)
    {
        var body = await (await client.GetWithTokenAsync("/api/v1/models", token)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        return body.GetProperty("offline").GetBoolean();
    }

    private sealed record Listed(string Id, string Name, int ContextWindow, int MaxOutputTokens, decimal InputPerMillionUsd, decimal OutputPerMillionUsd, bool Default);
}
