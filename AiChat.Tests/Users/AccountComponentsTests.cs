using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Users;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Users;

/// <summary>The real API's account components over HTTP, on both stores: their order, reverse deletion, and the wire shapes of health and export.</summary>
[Trait("Category", "Users")]
public sealed class AccountComponentsTests(PostgresServer postgres)
{
    private const string HealthyJson =
        """{"status":"healthy","checks":{"profile":{"ok":true,"status":"ok","detail":null},"agent":{"ok":true,"status":"ok","detail":null},"billing":{"ok":true,"status":"ok","detail":null},"conversation":{"ok":true,"status":"ok","detail":null}}}""";

    private const string DegradedJson =
        """{"status":"degraded","checks":{"profile":{"ok":true,"status":"ok","detail":null},"agent":{"ok":false,"status":"missing","detail":"The account has no agent."},"billing":{"ok":false,"status":"missing","detail":"The account has no billing account."},"conversation":{"ok":true,"status":"ok","detail":null}}}""";

    private const string ExportShape =
        "{exported_at:s,"
        + "profile:{account:{id:s,email:s,name:s,role:s,created_at:s,updated_at:s},sessions:[{id:s,created_at:s,revoked_at:null,revoked_reason:null}]},"
        + "agent:{id:s,runtime:s,model:s,created_at:s,blocks:[{label:s,value:s,limit:n,description:s,updated_at:s}],archival_passages:[{id:s,content:s,created_at:s,turn_id:null,conversation_id:null}],memory_changes:[]},"
        + "billing:{budget:{max_budget_usd:n,personal_limit_usd:null,effective_limit_usd:n,spent_usd:n,reserved_usd:n,remaining_usd:n,duration:s,period_start:s,resets_at:s},"
        + "usage_by_day:[{key:s,cost_usd:n,prompt_tokens:n,completion_tokens:n,calls:n}]},"
        + "conversation:{conversations:[{id:s,title:s,model:null,archived:b,is_default:b,created_at:s,last_message_at:s,"
        + "messages:[{replaced_by_id:null,id:s,role:s,content:s,status:s,usage:null,created_at:s}|{replaced_by_id:null,id:s,role:s,content:s,status:s,usage:{prompt_tokens:n,completion_tokens:n,total_tokens:n,cost_usd:n},created_at:s}]}]},api_keys:[]}";

    private const string EmptyExportShape =
        "{exported_at:s,"
        + "profile:{account:{id:s,email:s,name:s,role:s,created_at:s,updated_at:s},sessions:[{id:s,created_at:s,revoked_at:null,revoked_reason:null}]},"
        + "agent:null,billing:{budget:null,usage_by_day:[]},conversation:{conversations:[]},api_keys:[]}";

    [Fact]
    public async Task TheApisComponentsAreInTheDeclaredOrderNotTheOrderTheirFeaturesRegisteredThem()
    {
        // AddUsers registers profile, billing and LiteLLM before AddAgents and AddChat register theirs.
        await using var api = new ApiFactory().WithSetting("LiteLlm:MasterKey", LogSink.Secret("sk-unused-" + Guid.NewGuid().ToString("N")));
        await using var embedded = new ApiFactory();

        Assert.Equal(["profile", "agent", "billing", "litellm", "conversation", "api_keys"], api.Services.GetRequiredService<AccountLifecycle>().ComponentNames);
        Assert.Equal(["profile", "agent", "billing", "conversation", "api_keys"], embedded.Services.GetRequiredService<AccountLifecycle>().ComponentNames);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ProvisioningRunsInOrderAndDeletingRunsInReverse(StoreProvider provider)
    {
        var afterProfile = new RowProbe();
        var last = new RowProbe();
        await using var api = await StartAsync(provider, services => services
            .AddSingleton<IAccountComponent>(sp => afterProfile.Bind("after-profile", AccountOrder.Profile + 1, sp.GetRequiredService<AiChatDb>()))
            .AddSingleton<IAccountComponent>(sp => last.Bind("last", AccountOrder.Chat + 1, sp.GetRequiredService<AiChatDb>())));
        using var client = api.CreateClient();

        var pair = await client.RegisterAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Equal(new Rows(Users: 1, Agents: 0, BillingAccounts: 0), afterProfile.AtProvision);
        Assert.Equal(new Rows(Users: 1, Agents: 1, BillingAccounts: 1), last.AtProvision);
        Assert.Equal(new Rows(Users: 1, Agents: 1, BillingAccounts: 1), last.AtDelete);
        Assert.Equal(new Rows(Users: 1, Agents: 0, BillingAccounts: 0), afterProfile.AtDelete);
        Assert.Equal(0, await CountAsync(api, "SELECT COUNT(*) FROM users"));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task HealthExportAndMeKeepTheirWireShape(StoreProvider provider)
    {
        await using var api = await StartAsync(provider);
        using var client = api.CreateClient();
        var pair = await client.RegisterAsync(name: "Ana");
        await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/agent/memory/archival", pair.AccessToken, new { content = "Ana likes teal." });
        var turn = SseReader.Send(pair.AccessToken, "Hello, my name is Ana");
        turn.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(turn, TestContext.Current.CancellationToken)).StatusCode);
        await ChatTests.WaitForAsync(async () =>
            (await GetJsonAsync(client, "/api/v1/conversations", pair.AccessToken)).GetProperty("conversations")[0].GetProperty("title").GetString());

        Assert.Equal(HealthyJson, await GetTextAsync(client, "/api/v1/user/health", pair.AccessToken));
        var export = await GetJsonAsync(client, "/api/v1/user/export", pair.AccessToken);
        Assert.Equal(ExportShape, Shape(export));
        Assert.Equal(pair.UserId, export.GetProperty("profile").GetProperty("account").GetProperty("id").GetGuid());
        Assert.Equal("builtin", export.GetProperty("agent").GetProperty("runtime").GetString());
        Assert.Equal(["human", "persona"], export.GetProperty("agent").GetProperty("blocks").EnumerateArray().Select(b => b.GetProperty("label").GetString()));
        Assert.Equal("Ana likes teal.", Assert.Single(export.GetProperty("agent").GetProperty("archival_passages").EnumerateArray()).GetProperty("content").GetString());
        Assert.Equal(["user", "assistant"], Assert.Single(export.GetProperty("conversation").GetProperty("conversations").EnumerateArray()).GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        var me = await GetJsonAsync(client, "/api/v1/auth/me", pair.AccessToken);
        Assert.Equal("{id:s,email:s,name:s,role:s,created_at:s,identity_provider:s,agent:{id:s,runtime:s,status:s}}", Shape(me));
        Assert.Equal(export.GetProperty("agent").GetProperty("id").GetGuid(), me.GetProperty("agent").GetProperty("id").GetGuid());
        Assert.Equal(("builtin", "ready"), (me.GetProperty("agent").GetProperty("runtime").GetString(), me.GetProperty("agent").GetProperty("status").GetString()));

        await using (var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken))
        {
            await connection.ExecuteAsync("DELETE FROM agents WHERE user_id = @id", new { id = pair.UserId });
            await connection.ExecuteAsync("DELETE FROM conversations WHERE user_id = @id", new { id = pair.UserId });
            await connection.ExecuteAsync("DELETE FROM ledger_entries WHERE user_id = @id", new { id = pair.UserId });
            await connection.ExecuteAsync("DELETE FROM billing_accounts WHERE user_id = @id", new { id = pair.UserId });
        }

        Assert.Equal(DegradedJson, await GetTextAsync(client, "/api/v1/user/health", pair.AccessToken));
        Assert.Equal(EmptyExportShape, Shape(await GetJsonAsync(client, "/api/v1/user/export", pair.AccessToken)));
        Assert.Equal("{id:s,email:s,name:s,role:s,created_at:s,identity_provider:s,agent:null}", Shape(await GetJsonAsync(client, "/api/v1/auth/me", pair.AccessToken)));
    }

    /// <summary>The JSON's skeleton: every key in order, arrays by their distinct item shapes, values by their kind.</summary>
    private static string Shape(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", element.EnumerateObject().Select(p => $"{p.Name}:{Shape(p.Value)}")) + "}",
        JsonValueKind.Array => "[" + string.Join("|", element.EnumerateArray().Select(Shape).Distinct()) + "]",
        JsonValueKind.String => "s",
        JsonValueKind.Number => "n",
        JsonValueKind.True or JsonValueKind.False => "b",
        _ => "null",
    };

    private static async Task<string> GetTextAsync(HttpClient client, string path, string accessToken)
    {
        var response = await client.GetWithTokenAsync(path, accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, string accessToken) =>
        JsonDocument.Parse(await GetTextAsync(client, path, accessToken)).RootElement;

    private static async Task<long> CountAsync(ApiFactory api, string sql)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(TestContext.Current.CancellationToken);
        return await connection.ExecuteScalarAsync<long>(sql);
    }

    private async Task<ApiFactory> StartAsync(StoreProvider provider, Action<IServiceCollection>? services = null)
    {
        var api = new ApiFactory();
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        return services is null ? api : api.WithServices(services);
    }

    private sealed record Rows(long Users, long Agents, long BillingAccounts);

    /// <summary>A component that notes which of the user's rows exist when it is provisioned and when it is deleted.</summary>
    private sealed class RowProbe : IAccountComponent
    {
        private AiChatDb _db = null!;

        public string Name { get; private set; } = "";

        public int Order { get; private set; }

        public Rows? AtProvision { get; private set; }

        public Rows? AtDelete { get; private set; }

        public RowProbe Bind(string name, int order, AiChatDb db)
        {
            (Name, Order, _db) = (name, order, db);
            return this;
        }

        public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) => AtProvision = await RowsAsync(account.UserId);

        public async Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => AtDelete = await RowsAsync(userId);

        public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(null);

        public Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<ExportSection?>(null);

        private async Task<Rows> RowsAsync(Guid userId)
        {
            await using var connection = await _db.OpenAsync();
            return new Rows(
                await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users WHERE id = @userId", new { userId }),
                await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM agents WHERE user_id = @userId", new { userId }),
                await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM billing_accounts WHERE user_id = @userId", new { userId }));
        }
    }
}
