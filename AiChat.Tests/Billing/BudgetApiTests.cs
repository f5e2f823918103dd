using AiChat.Api.Data;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Tests.Api;
using AiChat.Tests.Auth;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Billing;

/// <summary>Budgets through the API: what a user sees, what a user and an admin may change, and turns that must not overspend.</summary>
[Trait("Category", "Billing")]
public sealed class BudgetApiTests(PostgresServer postgres) : IAsyncLifetime
{
    private FakeOpenAi _llm = null!;

    public async ValueTask InitializeAsync() => _llm = await FakeOpenAi.StartAsync(LogSink.Secret("sk-budget-" + Guid.NewGuid().ToString("N")));

    public ValueTask DisposeAsync() => _llm.DisposeAsync();

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ANewAccountHasTheDefaultGrantAndCanLowerItsOwnLimit(StoreProvider provider)
    {
        await using var api = await new ApiFactory().WithSetting("Billing:DefaultBudgetUsd", "5").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var budget = await GetJsonAsync(client, "/api/v1/user/budget", pair.AccessToken);
        Assert.Equal(5m, budget.GetProperty("max_budget_usd").GetDecimal());
        Assert.Equal(5m, budget.GetProperty("remaining_usd").GetDecimal());
        Assert.Equal(JsonValueKind.Null, budget.GetProperty("personal_limit_usd").ValueKind);
        Assert.Equal("1mo", budget.GetProperty("duration").GetString());
        Assert.Equal(budget.GetProperty("period_start").GetDateTimeOffset().AddMonths(1), budget.GetProperty("resets_at").GetDateTimeOffset());

        var lowered = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", pair.AccessToken, new { personal_limit_usd = 2.5m });
        Assert.Equal(HttpStatusCode.OK, lowered.StatusCode);
        var after = await lowered.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(2.5m, after.GetProperty("effective_limit_usd").GetDecimal());

        var above = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", pair.AccessToken, new { personal_limit_usd = 6m });
        await ApiPipelineTests.AssertProblemAsync(above, HttpStatusCode.Forbidden, "limit_above_grant");
        var negative = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", pair.AccessToken, new { personal_limit_usd = -1m });
        await ApiPipelineTests.AssertProblemAsync(negative, HttpStatusCode.UnprocessableEntity, "validation_failed");
        Assert.Equal(2.5m, (await GetJsonAsync(client, "/api/v1/user/budget", pair.AccessToken)).GetProperty("personal_limit_usd").GetDecimal());

        var cleared = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", pair.AccessToken, new { personal_limit_usd = (decimal?)null });
        Assert.Equal(5m, (await cleared.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("effective_limit_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OnlyAnAdminGrantsBudgets(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var admin = await client.RegisterAdminAsync(api);
        var user = await client.RegisterAsync();
        await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", user.AccessToken, new { personal_limit_usd = 8m });

        var selfGrant = await client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{user.UserId}/budget", user.AccessToken, new { max_budget_usd = 1000m });
        await ApiPipelineTests.AssertProblemAsync(selfGrant, HttpStatusCode.Forbidden, "forbidden");

        var granted = await client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{user.UserId}/budget", admin.AccessToken, new { max_budget_usd = 3m, duration = "1w" });
        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        var budget = await GetJsonAsync(client, "/api/v1/user/budget", user.AccessToken);
        Assert.Equal((3m, 3m, "1w"), (budget.GetProperty("max_budget_usd").GetDecimal(), budget.GetProperty("personal_limit_usd").GetDecimal(), budget.GetProperty("duration").GetString()));

        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{user.UserId}/budget", admin.AccessToken, new { max_budget_usd = 3m, duration = "2w" }),
            HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{Guid.NewGuid()}/budget", admin.AccessToken, new { max_budget_usd = 3m }),
            HttpStatusCode.NotFound, "not_found");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ATurnThatCannotAffordItsWorstCaseIsRefusedKeepsTheMessageAndChargesNothing(StoreProvider provider)
    {
        await using var api = await PricedApi().WithSetting("Billing:DefaultBudgetUsd", "0.0001").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var response = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello")), TestContext.Current.CancellationToken);

        var problem = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.PaymentRequired, "budget_exceeded")).RootElement;
        Assert.True(problem.GetProperty("required_usd").GetDecimal() > problem.GetProperty("remaining_usd").GetDecimal());
        Assert.Empty(_llm.Requests);
        var history = await ChatTests.HistoryAsync(client, pair.AccessToken, 10);
        Assert.Equal(("failed", "hello"), (history[0].GetProperty("status").GetString(), history[1].GetProperty("content").GetString()));
        Assert.Equal(0m, (await GetJsonAsync(client, "/api/v1/user/budget", pair.AccessToken)).GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM ledger_entries WHERE state <> 'released'"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TurnsStopWhenTheBudgetRunsOutAndNeverSpendPastIt(StoreProvider provider)
    {
        // The worst case reserved for one answer (the counted prompt + 300 output tokens at gpt-4o-mini prices) is about 0.0003 USD.
        await using var api = await PricedApi().WithSetting("Billing:DefaultBudgetUsd", "0.0015").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, pair.AccessToken); // the figures are the turns' own: no title call
        _llm.DefaultReply = FakeReply.Text("fine", promptTokens: 200, completionTokens: 300);

        var outcomes = new List<HttpResponseMessage>();
        for (var i = 0; i < 12; i++)
        {
            outcomes.Add(await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, $"message {i}")), TestContext.Current.CancellationToken));
        }

        // Each answer settles at 0.00021 USD, and the reservation of the next must fit what is left: with the counted prompts
        // of these turns, exactly six fit in 0.0015 USD (a seventh would reserve 0.00027 with 0.00024 left).
        var admitted = outcomes.Count(r => r.StatusCode == HttpStatusCode.OK);
        Assert.Equal(6, admitted);
        Assert.All(outcomes.Take(admitted), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var refusal = JsonDocument.Parse(await ApiPipelineTests.AssertProblemAsync(outcomes[admitted], HttpStatusCode.PaymentRequired, "budget_exceeded")).RootElement;
        var cost = (200 * 0.15m + 300 * 0.60m) / 1_000_000m;
        Assert.Equal(0.0015m - admitted * cost, refusal.GetProperty("remaining_usd").GetDecimal());
        Assert.True(refusal.GetProperty("required_usd").GetDecimal() > refusal.GetProperty("remaining_usd").GetDecimal());
        foreach (var refused in outcomes.Skip(admitted + 1))
        {
            await ApiPipelineTests.AssertProblemAsync(refused, HttpStatusCode.PaymentRequired, "budget_exceeded");
        }

        var budget = await GetJsonAsync(client, "/api/v1/user/budget", pair.AccessToken);
        Assert.Equal(admitted * cost, budget.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, budget.GetProperty("reserved_usd").GetDecimal());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task UsageAndBudgetTravelWithTheTurnAndAddUpInTheReport(StoreProvider provider)
    {
        await using var api = await PricedApi().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();
        await ChatTests.NameDefaultConversationAsync(client, pair.AccessToken); // the figures are the turns' own: no title call
        _llm.DefaultReply = FakeReply.Text("priced answer", promptTokens: 1000, completionTokens: 100);

        var (_, reader) = await SseReader.OpenAsync(client, SseReader.Send(pair.AccessToken, "first"));
        var events = await reader.ReadAllAsync();
        var json = await (await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "second")), TestContext.Current.CancellationToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);

        var cost = (1000 * 0.15m + 100 * 0.60m) / 1_000_000m;
        var usage = events.Single(e => e.Event == "usage").Data;
        Assert.Equal(cost, usage.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(10m - cost, usage.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());
        Assert.Equal(10m - cost, events[^1].Data.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());
        Assert.Equal(cost, json.GetProperty("usage").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(10m - 2 * cost, json.GetProperty("budget").GetProperty("remaining_usd").GetDecimal());

        var byModel = await GetJsonAsync(client, "/api/v1/user/usage?group_by=model", pair.AccessToken);
        var point = Assert.Single(byModel.GetProperty("series").EnumerateArray());
        Assert.StartsWith("gpt-4o-mini", point.GetProperty("key").GetString());
        Assert.Equal(2 * cost, byModel.GetProperty("totals").GetProperty("cost_usd").GetDecimal());
        Assert.Equal(2, byModel.GetProperty("totals").GetProperty("calls").GetInt64());
        var byDay = await GetJsonAsync(client, "/api/v1/user/usage", pair.AccessToken);
        Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd"), Assert.Single(byDay.GetProperty("series").EnumerateArray()).GetProperty("key").GetString());
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/user/usage?group_by=week", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/user/usage?from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z", pair.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AModelWithoutAPriceIsRefusedNotBilledAtZero(StoreProvider provider)
    {
        await using var api = await PricedApi().WithSetting("Llm:Model", "mystery-model-9000").OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var response = await client.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "hello")), TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable, "model_not_priced");
        Assert.Empty(_llm.Requests);
    }

    private ApiFactory PricedApi() => new ApiFactory()
        .WithSetting("Llm:Endpoint", _llm.BaseUrl.ToString())
        .WithSetting("Llm:ApiKey", _llm.ApiKey)
        .WithSetting("Llm:Model", "gpt-4o-mini")
        .WithSetting("Llm:MaxOutputTokens", "300");

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, string token)
    {
        var response = await client.GetWithTokenAsync(path, token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
    }
}
