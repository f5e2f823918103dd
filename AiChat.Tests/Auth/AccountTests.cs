using AiChat.Api.Data;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Users;
using AiChat.Tests.Api;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Auth;

/// <summary>The account itself: profile, health, export, deletion, admin listing, and all-or-nothing provisioning.</summary>
[Trait("Category", "Auth")]
public sealed class AccountTests(PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheProfileCanBeReadAndRenamed(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var renamed = await client.SendWithTokenAsync(HttpMethod.Patch, "/api/v1/user/profile", pair.AccessToken, new { name = "  Ana Lima  " });
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);

        var profile = await (await client.GetWithTokenAsync("/api/v1/user/profile", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("Ana Lima", profile.GetProperty("name").GetString());
        Assert.False(profile.TryGetProperty("password_hash", out _));
    }

    public static TheoryData<StoreProvider, string, HttpStatusCode, string> InvalidNames()
    {
        var data = new TheoryData<StoreProvider, string, HttpStatusCode, string>();
        foreach (var provider in new[] { StoreProvider.Sqlite, StoreProvider.Postgres })
        {
            data.Add(provider, "", HttpStatusCode.UnprocessableEntity, "validation_failed");
            data.Add(provider, "   ", HttpStatusCode.UnprocessableEntity, "validation_failed");
            data.Add(provider, "bell\u0007", HttpStatusCode.BadRequest, "invalid_text");
            data.Add(provider, "x101", HttpStatusCode.UnprocessableEntity, "validation_failed");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public async Task AnInvalidNameIsRefusedAndChangesNothing(StoreProvider provider, string name, HttpStatusCode status, string code)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var response = await client.SendWithTokenAsync(HttpMethod.Patch, "/api/v1/user/profile", pair.AccessToken, new { name = name == "x101" ? new string('x', 101) : name });

        await ApiPipelineTests.AssertProblemAsync(response, status, code);
        var profile = await (await client.GetWithTokenAsync("/api/v1/user/profile", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal("Ana", profile.GetProperty("name").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AccountEndpointsNeedAToken(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();

        foreach (var path in new[] { "/api/v1/user/profile", "/api/v1/user/health", "/api/v1/user/export", "/api/v1/auth/me", "/api/v1/admin/users" })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.GetAsync(path, TestContext.Current.CancellationToken), HttpStatusCode.Unauthorized, "unauthorized");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task HealthReportsTheAccountsParts(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var health = await (await client.GetWithTokenAsync("/api/v1/user/health", pair.AccessToken)).Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);

        Assert.Equal("healthy", health.GetProperty("status").GetString());
        Assert.True(health.GetProperty("checks").GetProperty("profile").GetProperty("ok").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheExportHoldsTheProfileAndNoSecret(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");

        var response = await client.GetWithTokenAsync("/api/v1/user/export", pair.AccessToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var export = JsonDocument.Parse(body).RootElement;
        Assert.Equal(pair.UserId, export.GetProperty("profile").GetProperty("account").GetProperty("id").GetGuid());
        Assert.Equal("Ana", export.GetProperty("profile").GetProperty("account").GetProperty("name").GetString());
        Assert.Single(export.GetProperty("profile").GetProperty("sessions").EnumerateArray());
        Assert.DoesNotContain(pair.RefreshToken, body);
        Assert.DoesNotContain("AQAAAA", body); // the prefix of an Identity v3 password hash
        Assert.DoesNotContain("password", body, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingTheAccountRemovesItsRowsAndEndsItsTokens(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        var pair = await client.RegisterAsync(email);
        var bystander = await client.RegisterAsync();

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, $"SELECT COUNT(*) FROM users WHERE email = '{email}'"));
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM auth_sessions"));
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM refresh_tokens"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/user/profile", pair.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/user/profile", bystander.AccessToken)).StatusCode);

        // The email is free again.
        await client.RegisterAsync(email);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AUserCallingAnAdminRouteIsForbidden(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync();

        var response = await client.GetWithTokenAsync("/api/v1/admin/users", pair.AccessToken);

        await ApiPipelineTests.AssertProblemAsync(response, HttpStatusCode.Forbidden, "forbidden");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnAdminPagesThroughAllAccounts(StoreProvider provider)
    {
        await using var api = await new ApiFactory().OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var admin = await client.RegisterAdminAsync(api);
        for (var i = 0; i < 4; i++)
        {
            await client.RegisterAsync();
        }

        var seen = new List<Guid>();
        string? cursor = null;
        do
        {
            var page = await (await client.GetWithTokenAsync($"/api/v1/admin/users?limit=2{(cursor is null ? "" : $"&after={cursor}")}", admin.AccessToken))
                .Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
            seen.AddRange(page.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("id").GetGuid()));
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(5, seen.Count);
        Assert.Equal(5, seen.Distinct().Count());
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users?limit=0", admin.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users?after=bogus", admin.AccessToken), HttpStatusCode.UnprocessableEntity, "validation_failed");
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AFailedProvisioningStepLeavesNoAccountAndARetrySucceeds(StoreProvider provider)
    {
        var flaky = new FlakyComponent(failures: 1);
        await using var api = await new ApiFactory().WithServices(services => services.AddSingleton<IAccountComponent>(flaky)).OnAsync(provider, postgres);
        using var client = api.CreateClient();
        var email = Accounts.NewEmail();
        var password = Accounts.NewPassword();

        var failed = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password }, TestContext.Current.CancellationToken);

        await ApiPipelineTests.AssertProblemAsync(failed, HttpStatusCode.ServiceUnavailable, "provisioning_failed");
        Assert.Equal(0, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));
        Assert.Empty(flaky.Provisioned);

        var retried = await client.RegisterAsync(email, password);
        Assert.Equal([retried.UserId], flaky.Provisioned);
        Assert.Equal(1, await BuiltInAuthTests.CountAsync(api, "SELECT COUNT(*) FROM users"));

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", retried.AccessToken)).StatusCode);
        Assert.Empty(flaky.Provisioned);
    }

    /// <summary>A component after all the real ones that fails its first calls after doing part of its work.</summary>
    private sealed class FlakyComponent(int failures) : IAccountComponent
    {
        private int _failuresLeft = failures;

        public List<Guid> Provisioned { get; } = [];

        public string Name => "flaky";

        public int Order => AccountOrder.Chat + 1;

        public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
        {
            lock (Provisioned)
            {
                Provisioned.Add(account.UserId);
                if (_failuresLeft-- > 0)
                {
                    throw new InvalidOperationException("the downstream service is down");
                }
            }

            return Task.CompletedTask;
        }

        public Task DeleteAsync(Guid userId, CancellationToken cancellationToken)
        {
            lock (Provisioned)
            {
                Provisioned.Remove(userId);
            }

            return Task.CompletedTask;
        }

        public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(null);

        public Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<ExportSection?>(null);
    }
}
