using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Proof;

/// <summary>What a request of another user must get: not found, forbidden, or an answer about their own data only.</summary>
public enum Isolation { NotFound, Forbidden, OwnDataOnly }

public sealed record IsolationCase(string Name, string Method, string Path, Isolation Expect, object? Body = null, string? LastEventId = null);

/// <summary>
/// The isolation matrix, on SQLite and Postgres: a second user with a valid token aims at every endpoint that takes an id
/// of the owner's data (404, store unchanged), at the admin routes (403, store unchanged), and at every endpoint that acts
/// on "my" data (their own data only: nothing of the owner's in the answer, the owner's export unchanged).
/// </summary>
[Trait("Category", "Proof")]
public sealed class IsolationMatrixTests(PostgresServer postgres, SeededApis apis) : IClassFixture<SeededApis>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static readonly IReadOnlyList<IsolationCase> All =
    [
        new("read the owner's conversation", "GET", "/api/v1/conversations/{conversation}", Isolation.NotFound),
        new("rename the owner's conversation", "PATCH", "/api/v1/conversations/{conversation}", Isolation.NotFound, new { title = "mine now" }),
        new("archive the owner's conversation", "PATCH", "/api/v1/conversations/{conversation}", Isolation.NotFound, new { archived = true }),
        new("delete the owner's conversation", "DELETE", "/api/v1/conversations/{conversation}", Isolation.NotFound),
        new("post into the owner's conversation", "POST", "/api/v1/conversations/{conversation}/messages", Isolation.NotFound, new { content = "hi" }),
        new("read the owner's messages", "GET", "/api/v1/conversations/{conversation}/messages", Isolation.NotFound),
        new("regenerate the owner's answer", "POST", "/api/v1/conversations/{conversation}/messages/{message}/regenerate", Isolation.NotFound),
        new("regenerate the owner's answer from their own conversation", "POST", "/api/v1/conversations/{intruder_conversation}/messages/{message}/regenerate", Isolation.NotFound),
        new("read the alternatives of the owner's answer", "GET", "/api/v1/conversations/{conversation}/messages/{message}/alternatives", Isolation.NotFound),
        new("read them through their own conversation", "GET", "/api/v1/conversations/{intruder_conversation}/messages/{message}/alternatives", Isolation.NotFound),
        new("stream the owner's turn", "GET", "/api/v1/chat/turns/{turn}/events", Isolation.NotFound),
        new("replay the owner's turn", "GET", "/api/v1/chat/turns/{turn}/events", Isolation.NotFound, LastEventId: "0"),
        new("cancel the owner's turn", "POST", "/api/v1/chat/turns/{turn}/cancel", Isolation.NotFound),
        new("delete the owner's passage", "DELETE", "/api/v1/agent/memory/archival/{passage}", Isolation.NotFound),
        new("revert the owner's memory change", "POST", "/api/v1/agent/memory/changes/{change}/revert", Isolation.NotFound),

        new("list all accounts", "GET", "/api/v1/admin/users", Isolation.Forbidden),
        new("list the admin grants", "GET", "/api/v1/admin/grants", Isolation.Forbidden),
        new("read the owner's budget as admin", "GET", "/api/v1/admin/users/{owner}/budget", Isolation.Forbidden),
        new("grant the owner a budget", "PUT", "/api/v1/admin/users/{owner}/budget", Isolation.Forbidden, new { max_budget_usd = 1000 }),
        new("grant themselves a budget", "PUT", "/api/v1/admin/users/{intruder}/budget", Isolation.Forbidden, new { max_budget_usd = 1000 }),
        new("make themselves an admin", "POST", "/api/v1/admin/users/{intruder}/admin", Isolation.Forbidden),
        new("make the owner an admin", "POST", "/api/v1/admin/users/{owner}/admin", Isolation.Forbidden),

        new("list conversations", "GET", "/api/v1/conversations?limit=100", Isolation.OwnDataOnly),
        new("list archived conversations", "GET", "/api/v1/conversations?archived=true", Isolation.OwnDataOnly),
        new("read the history", "GET", "/api/v1/chat/history?limit=200", Isolation.OwnDataOnly),
        new("search for the owner's words", "GET", "/api/v1/search?query=cello", Isolation.OwnDataOnly),
        new("search for the owner's name", "GET", "/api/v1/search?query=Ana", Isolation.OwnDataOnly),
        new("read memory", "GET", "/api/v1/agent/memory", Isolation.OwnDataOnly),
        new("read memory changes", "GET", "/api/v1/agent/memory/changes?limit=200", Isolation.OwnDataOnly),
        new("list passages", "GET", "/api/v1/agent/memory/archival", Isolation.OwnDataOnly),
        new("search passages", "GET", "/api/v1/agent/memory/archival?query=cello", Isolation.OwnDataOnly),
        new("read the budget", "GET", "/api/v1/user/budget", Isolation.OwnDataOnly),
        new("read usage", "GET", "/api/v1/user/usage", Isolation.OwnDataOnly),
        new("read usage by model", "GET", "/api/v1/user/usage?group_by=model", Isolation.OwnDataOnly),
        new("export", "GET", "/api/v1/user/export", Isolation.OwnDataOnly),
        new("read the agent's status", "GET", "/api/v1/agent/status", Isolation.OwnDataOnly),
        new("read the profile", "GET", "/api/v1/user/profile", Isolation.OwnDataOnly),
        new("read me", "GET", "/api/v1/auth/me", Isolation.OwnDataOnly),
        new("read the account's health", "GET", "/api/v1/user/health", Isolation.OwnDataOnly),
        new("send a message", "POST", "/api/v1/chat/message", Isolation.OwnDataOnly, new { content = "what do you know about me?" }),
        new("write memory", "POST", "/api/v1/agent/memory", Isolation.OwnDataOnly, new { blocks = new[] { new { label = "human", value = "Bo" } } }),
        new("add a passage", "POST", "/api/v1/agent/memory/archival", Isolation.OwnDataOnly, new { content = "Bo plays drums." }),
        new("lower the personal limit", "POST", "/api/v1/user/budget", Isolation.OwnDataOnly, new { personal_limit_usd = 1 }),
        new("rename themselves", "PATCH", "/api/v1/user/profile", Isolation.OwnDataOnly, new { name = "Bo B." }),
        new("clear the history", "DELETE", "/api/v1/chat/history", Isolation.OwnDataOnly),
        new("reset everything", "POST", "/api/v1/agent/reset", Isolation.OwnDataOnly, new { scope = "all" }),
    ];

    public static TheoryData<StoreProvider, string> Cases() => TestStore.OnEachProvider(All.Select(@case => @case.Name));

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AnotherUserNeverReachesTheOwnersData(StoreProvider provider, string name)
    {
        var api = await apis.GetAsync(provider, postgres);
        var @case = All.Single(c => c.Name == name);
        var before = await api.SettledFingerprintAsync();
        var ownerExport = await ExportAsync(api, api.Owner.AccessToken);

        using var request = new HttpRequestMessage(new HttpMethod(@case.Method), api.Resolve(@case.Path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", api.Intruder.AccessToken);
        request.Headers.Accept.ParseAdd("application/json");
        if (@case.Body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(@case.Body), Encoding.UTF8, "application/json");
        }

        if (@case.LastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", @case.LastEventId);
        }

        using var response = await api.Client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);

        switch (@case.Expect)
        {
            case Isolation.NotFound or Isolation.Forbidden:
                var (status, code) = @case.Expect == Isolation.NotFound ? (HttpStatusCode.NotFound, "not_found") : (HttpStatusCode.Forbidden, "forbidden");
                Assert.True(response.StatusCode == status, $"{(int)response.StatusCode} {body}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
                SeededApi.AssertUnchanged(before, await api.FingerprintAsync());
                break;
            default:
                Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {body}");
                break;
        }

        // A problem's instance echoes the path the intruder sent (ids they already hold); nothing else may name the owner's data.
        var answer = body.Replace(api.Resolve(@case.Path).Split('?')[0], "", StringComparison.Ordinal) + response.Headers;
        var leaked = api.OwnerMarkers().Where(marker => answer.Contains(marker, StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(leaked.Count == 0, $"The answer holds the owner's {string.Join(", ", leaked)}: {body}");
        Assert.Equal(ownerExport, await ExportAsync(api, api.Owner.AccessToken));
    }

    private static async Task<string> ExportAsync(SeededApi api, string token)
    {
        var response = await api.Client.GetWithTokenAsync("/api/v1/user/export", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var export = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
        export.Remove("exported_at"); // when the export was made, not what it holds
        return export.ToJsonString();
    }
}
