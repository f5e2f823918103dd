using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Users;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Auth;

/// <summary>
/// How admins are made: never by registering an email; the first by the one-time <c>grant-admin</c> command, later ones
/// by an admin, each recorded; with Supabase, <c>Auth:Admins</c> only for an email Supabase shows confirmed.
/// </summary>
[Trait("Category", "Auth")]
public sealed class AdminBootstrapTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegisteringAnEmailListedInAuthAdminsDoesNotMakeAnAdmin(StoreProvider provider)
    {
        var email = Accounts.NewEmail("boss");
        await using var api = new ApiFactory().WithSetting("Auth:Admins:0", email);
        await OnAsync(api, provider);
        using var client = api.CreateClient();

        var pair = await client.RegisterAsync(email);

        Assert.Equal("user", pair.User.GetProperty("role").GetString());
        Assert.Equal("user", (await MeAsync(client, pair.AccessToken)).GetProperty("role").GetString());
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users", pair.AccessToken), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM admin_grants"));
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM users WHERE role = 'admin'"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheGrantAdminCommandMakesTheFirstAdminOnceAndOnlyOnce(StoreProvider provider)
    {
        await using var api = new ApiFactory();
        var store = await OnAsync(api, provider);
        using var client = api.CreateClient();
        var first = await client.RegisterAsync(Accounts.NewEmail("first"));
        var second = await client.RegisterAsync(Accounts.NewEmail("second"));
        var firstEmail = first.User.GetProperty("email").GetString()!;
        var secondEmail = second.User.GetProperty("email").GetString()!;

        var unknown = await ApiProcess.RunCommandAsync(store, "grant-admin", Accounts.NewEmail("nobody"));
        var granted = await ApiProcess.RunCommandAsync(store, "grant-admin", firstEmail);
        var again = await ApiProcess.RunCommandAsync(store, "grant-admin", secondEmail);

        Assert.True(unknown.ExitCode == 1, unknown.Output);
        Assert.Contains("No account has this email", unknown.Output);
        Assert.True(granted.ExitCode == 0, granted.Output);
        Assert.Contains($"Account {first.UserId} is now an admin", granted.Output);
        Assert.True(again.ExitCode == 1, again.Output);
        Assert.Contains("The store has an admin already", again.Output);

        // The role is the store's, read on every request: the token the first account already holds is an admin's now.
        Assert.Equal("admin", (await MeAsync(client, first.AccessToken)).GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/admin/users", first.AccessToken)).StatusCode);
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users", second.AccessToken), HttpStatusCode.Forbidden, "forbidden");

        var grant = Assert.Single(await GrantsAsync(client, first.AccessToken));
        Assert.Equal(first.UserId, grant.GetProperty("user_id").GetGuid());
        Assert.Equal(JsonValueKind.Null, grant.GetProperty("granted_by").ValueKind);
        Assert.Equal("bootstrap", grant.GetProperty("via").GetString());
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM users WHERE role = 'admin'"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task BootstrapsRacingEachOtherMakeExactlyOneAdmin(StoreProvider provider)
    {
        await using var api = new ApiFactory();
        await OnAsync(api, provider);
        using var client = api.CreateClient();
        var emails = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            emails.Add((await client.RegisterAsync()).User.GetProperty("email").GetString()!);
        }

        var grants = api.Services.GetRequiredService<AdminGrants>();
        using var start = new SemaphoreSlim(0);
        var racers = emails.Select(async email =>
        {
            await start.WaitAsync(Ct);
            return await grants.BootstrapAsync(email, Ct);
        }).ToList();
        start.Release(racers.Count);
        var outcomes = await Task.WhenAll(racers);

        Assert.Single(outcomes, outcome => outcome is GrantOutcome.Granted);
        Assert.Equal(5, outcomes.Count(outcome => outcome is GrantOutcome.AdminExists));
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM users WHERE role = 'admin'"));
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM admin_grants WHERE via = 'bootstrap'"));
    }

    [Fact]
    public async Task TheGrantAdminCommandWithoutAnEmailPrintsItsUsage()
    {
        await using var api = new ApiFactory();
        var (exitCode, output) = await ApiProcess.RunCommandAsync(new Dictionary<string, string> { ["Store:DataDirectory"] = api.DataDirectory }, "grant-admin");

        Assert.Equal(2, exitCode);
        Assert.Contains("Usage: grant-admin <email", output);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnAdminGrantsAnotherAndTheGrantIsRecorded(StoreProvider provider)
    {
        await using var api = new ApiFactory();
        await OnAsync(api, provider);
        using var client = api.CreateClient();
        var admin = await client.RegisterAdminAsync(api);
        var user = await client.RegisterAsync();
        var before = DateTimeOffset.UtcNow;

        var response = await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{user.UserId}/admin", admin.AccessToken);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal(["id", "user_id", "granted_by", "via", "created_at"], created.EnumerateObject().Select(p => p.Name));
        Assert.Equal(user.UserId, created.GetProperty("user_id").GetGuid());
        Assert.Equal(admin.UserId, created.GetProperty("granted_by").GetGuid());
        Assert.Equal("admin", created.GetProperty("via").GetString());
        Assert.InRange(created.GetProperty("created_at").GetDateTimeOffset(), before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal("admin", (await MeAsync(client, user.AccessToken)).GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/admin/users", user.AccessToken)).StatusCode);

        var grants = await GrantsAsync(client, user.AccessToken);
        Assert.Equal(["bootstrap", "admin"], grants.Select(g => g.GetProperty("via").GetString()));
        Assert.Equal(created.GetRawText(), grants[1].GetRawText());

        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{user.UserId}/admin", admin.AccessToken), HttpStatusCode.Conflict, "already_admin");
        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{Guid.NewGuid()}/admin", admin.AccessToken), HttpStatusCode.NotFound, "not_found");
        Assert.Equal(2, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM admin_grants"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AUserCannotGrantAdminToAnyoneNorThemselves(StoreProvider provider)
    {
        await using var api = new ApiFactory();
        await OnAsync(api, provider);
        using var client = api.CreateClient();
        await client.RegisterAdminAsync(api);
        var user = await client.RegisterAsync();
        var other = await client.RegisterAsync();

        foreach (var target in new[] { user.UserId, other.UserId })
        {
            await ApiPipelineTests.AssertProblemAsync(
                await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{target}/admin", user.AccessToken), HttpStatusCode.Forbidden, "forbidden");
        }

        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/grants", user.AccessToken), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM admin_grants"));
        Assert.Equal(1, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM users WHERE role = 'admin'"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WithSupabaseAnUnconfirmedListedEmailIsNotAnAdminUntilSupabaseConfirmsIt(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync(confirmEmail: true);
        var email = Accounts.NewEmail("boss");
        var password = Accounts.NewPassword();
        await using var api = SupabaseApi(supabase).WithSetting("Auth:Admins:0", email);
        await OnAsync(api, provider);
        using var client = api.CreateClient();

        var signUp = await client.PostAsJsonAsync("/api/v1/auth/register", new { email, password }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, signUp.StatusCode);
        var userId = (await signUp.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("user").GetProperty("id").GetGuid();

        // A valid token of the unconfirmed user (its email claim is the listed one): an account, not an admin.
        var unconfirmed = LogSink.Secret(supabase.MintAccessToken(userId.ToString(), email));
        Assert.Equal("user", (await MeAsync(client, unconfirmed)).GetProperty("role").GetString());
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users", unconfirmed), HttpStatusCode.Forbidden, "forbidden");
        await ApiPipelineTests.AssertProblemAsync(await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password }, Ct), HttpStatusCode.Forbidden, "email_not_confirmed");
        Assert.Equal(0, await Conversations.CountAsync(api, "SELECT COUNT(*) FROM admin_grants"));

        supabase.Confirm(email);
        var confirmed = await client.LoginAsync(email, password);

        Assert.Equal("admin", confirmed.User.GetProperty("role").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/admin/users", confirmed.AccessToken)).StatusCode);
        var grant = Assert.Single(await GrantsAsync(client, confirmed.AccessToken));
        Assert.Equal((userId, "config"), (grant.GetProperty("user_id").GetGuid(), grant.GetProperty("via").GetString()));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WithSupabaseAConfirmedEmailNotListedStaysAUser(StoreProvider provider)
    {
        await using var supabase = await FakeSupabaseAuth.StartAsync();
        await using var api = await SupabaseApi(supabase).WithSetting("Auth:Admins:0", Accounts.NewEmail("boss")).OnAsync(provider, postgres);
        using var client = api.CreateClient();

        var pair = await client.RegisterAsync();

        Assert.Equal("user", pair.User.GetProperty("role").GetString());
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync("/api/v1/admin/users", pair.AccessToken), HttpStatusCode.Forbidden, "forbidden");
    }

    internal static async Task<List<JsonElement>> GrantsAsync(HttpClient client, string adminToken)
    {
        var response = await client.GetWithTokenAsync("/api/v1/admin/grants", adminToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("grants").EnumerateArray().ToList();
    }

    private static async Task<JsonElement> MeAsync(HttpClient client, string token)
    {
        var response = await client.GetWithTokenAsync("/api/v1/auth/me", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static ApiFactory SupabaseApi(FakeSupabaseAuth supabase)
    {
        LogSink.Secret(supabase.AnonKey);
        return new ApiFactory()
            .WithSetting("Supabase:Url", supabase.Url.ToString()[..^"/auth/v1".Length])
            .WithSetting("Supabase:AnonKey", supabase.AnonKey);
    }

    /// <summary>Puts the API on the provider; the settings that point a command of the API at the same store.</summary>
    private async Task<Dictionary<string, string>> OnAsync(ApiFactory api, StoreProvider provider)
    {
        if (provider == StoreProvider.Postgres)
        {
            var connectionString = await postgres.CreateDatabaseAsync();
            api.WithPostgres(connectionString);
            return new() { [$"ConnectionStrings:{ResourceNames.AiChatDb}"] = connectionString };
        }

        return new() { ["Store:DataDirectory"] = api.DataDirectory };
    }
}
