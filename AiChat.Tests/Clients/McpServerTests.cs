using System.Net;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AiChat.Tests.Clients;

/// <summary>
/// The MCP server at <c>/mcp</c> through the gateway, driven by the official C# client (<c>ModelContextProtocol</c>) with a
/// personal API key, on SQLite and Postgres: its tools, a block append recorded in the change log as made through MCP by
/// that key, a write over the limit refused with nothing changed, archival and conversation search, a message to the
/// agent in a named conversation, and a revoked key refused at once.
/// </summary>
[Trait("Category", "Clients")]
public sealed class McpServerTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnMcpClientWorksOnTheUsersMemoryAndConversationsWithAKey(StoreProvider provider)
    {
        var api = new ApiFactory().WithSetting("Agents:HumanLimit", "200");
        await using var system = RunningSystem.Start(provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api);
        using var http = system.GatewayClient();
        var pair = await http.RegisterAsync(name: null);
        var key = await ApiKeys.CreateAsync(http, pair.AccessToken, "claude desktop");
        await using var client = await ConnectAsync(system, key.Key);

        var tools = await client.ListToolsAsync(cancellationToken: Ct);
        Assert.Equal(
            ["append_core_memory", "archival_memory_insert", "archival_memory_search", "conversation_search", "list_conversations", "read_core_memory", "replace_core_memory", "send_message"],
            tools.Select(t => t.Name).Order(StringComparer.Ordinal));

        // An append, recorded as made through MCP by this key.
        var appended = await CallAsync(client, "append_core_memory", new() { ["label"] = "human", ["text"] = "Likes: green tea" });
        Assert.Equal("Likes: green tea", appended.GetProperty("value").GetString());
        var change = (await ChangesAsync(http, pair.AccessToken))[0];
        Assert.Equal("human", change.GetProperty("label").GetString());
        Assert.Equal("", change.GetProperty("old_value").GetString());
        Assert.Equal("Likes: green tea", change.GetProperty("new_value").GetString());
        Assert.Equal("mcp", change.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(key.Id, change.GetProperty("source").GetProperty("key_id").GetGuid());

        // Over the block's limit: refused, and nothing changes.
        var over = await client.CallToolAsync("append_core_memory", new Dictionary<string, object?> { ["label"] = "human", ["text"] = new string('x', 200) }, cancellationToken: Ct);
        Assert.True(over.IsError);
        Assert.Contains("at most 200 characters", Text(over));
        var unknown = await client.CallToolAsync("replace_core_memory", new Dictionary<string, object?> { ["label"] = "nope", ["old_text"] = "a", ["new_text"] = "b" }, cancellationToken: Ct);
        Assert.True(unknown.IsError);
        Assert.Single(await ChangesAsync(http, pair.AccessToken));
        var human = (await CallArrayAsync(client, "read_core_memory", new())).Single(b => b.GetProperty("label").GetString() == "human");
        Assert.Equal("Likes: green tea", human.GetProperty("value").GetString());
        Assert.Equal(200, human.GetProperty("limit").GetInt32());

        // Archival memory: what is inserted is found.
        await CallAsync(client, "archival_memory_insert", new() { ["text"] = "The spare key is under the blue flowerpot." });
        var passages = await CallArrayAsync(client, "archival_memory_search", new() { ["query"] = "flowerpot" });
        Assert.Equal("The spare key is under the blue flowerpot.", Assert.Single(passages).GetProperty("content").GetString());

        // A message to the agent in a conversation named by its title (new, so made), then found by search.
        var answer = await CallAsync(client, "send_message", new() { ["conversation"] = "Trip planning", ["message"] = "my name is Ana" });
        Assert.Equal("[offline model] Got it. I've noted \"Name: Ana\" in my memory.", answer.GetProperty("answer").GetString());
        var conversation = answer.GetProperty("conversation_id").GetGuid();
        var again = await CallAsync(client, "send_message", new() { ["conversation"] = "trip planning", ["message"] = "what is my name?" });
        Assert.Equal(conversation, again.GetProperty("conversation_id").GetGuid());
        Assert.Equal("[offline model] Your name is Ana. I have it in my memory.", again.GetProperty("answer").GetString());
        Assert.Equal(
            ["user: my name is Ana", $"assistant: {answer.GetProperty("answer").GetString()}", "user: what is my name?", $"assistant: {again.GetProperty("answer").GetString()}"],
            await OpenAiSdkTests.HistoryAsync(http, pair.AccessToken, conversation));
        var hits = await CallArrayAsync(client, "conversation_search", new() { ["query"] = "name Ana" });
        Assert.Contains(hits, hit => hit.GetProperty("conversation_id").GetGuid() == conversation && hit.GetProperty("content").GetString() == "my name is Ana");
        var listed = await CallArrayAsync(client, "list_conversations", new());
        Assert.Contains(listed, c => c.GetProperty("id").GetGuid() == conversation && c.GetProperty("title").GetString() == "Trip planning");

        // Revoked: the very next call with the key is refused, and so is a new connection.
        Assert.Equal(HttpStatusCode.NoContent, (await http.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/user/api-keys/{key.Id}", pair.AccessToken)).StatusCode);
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => client.CallToolAsync("read_core_memory", new Dictionary<string, object?>(), cancellationToken: Ct).AsTask());
        Assert.Contains("401", refused.ToString());
        await Assert.ThrowsAnyAsync<Exception>(async () => await ConnectAsync(system, key.Key));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheMcpServerRefusesARequestWithoutAValidKey(StoreProvider provider)
    {
        var api = new ApiFactory();
        await using var system = RunningSystem.Start(provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api);
        using var http = system.GatewayClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new("Bearer", "aik_" + new string('A', 43));
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        var response = await http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        await Assert.ThrowsAnyAsync<Exception>(async () => await ConnectAsync(system, null));
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MessagesThroughMcpAndTheOpenAiEndpointShareTheUsersAllowance(StoreProvider provider)
    {
        var api = new ApiFactory().WithSetting("Chat:RateLimits:MessagesPerMinute", "2");
        await using var system = RunningSystem.Start(provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api);
        using var http = system.GatewayClient();
        var pair = await http.RegisterAsync();
        var key = await ApiKeys.CreateAsync(http, pair.AccessToken);
        await using var client = await ConnectAsync(system, key.Key);

        await CallAsync(client, "send_message", new() { ["conversation"] = "one", ["message"] = "hello" });
        var completion = await http.SendAsync(Completion(key.Key), Ct);
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);

        var refused = await client.CallToolAsync("send_message", new Dictionary<string, object?> { ["conversation"] = "one", ["message"] = "again" }, cancellationToken: Ct);
        Assert.True(refused.IsError);
        Assert.Contains("At most 2 messages a minute; this one was not sent.", Text(refused));
        var limited = await http.SendAsync(Completion(key.Key), Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var error = JsonDocument.Parse(await limited.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error");
        Assert.Equal("rate_limited", error.GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal(2, await AiChat.Tests.Chat.Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM turns WHERE user_id = @userId", new { userId = pair.UserId }));
    }

    private static HttpRequestMessage Completion(string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { model = "aichat-offline", messages = new[] { new { role = "user", content = "hi" } } }),
        };
        request.Headers.Authorization = new("Bearer", key);
        return request;
    }

    private static async Task<McpClient> ConnectAsync(RunningSystem system, string? key)
    {
        var options = new HttpClientTransportOptions
        {
            Endpoint = new Uri(system.GatewayAddress, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = key is null ? null : new Dictionary<string, string> { ["Authorization"] = $"Bearer {key}" },
        };
        return await McpClient.CreateAsync(new HttpClientTransport(options), cancellationToken: Ct);
    }

    private static async Task<JsonElement> CallAsync(McpClient client, string tool, Dictionary<string, object?> arguments)
    {
        var result = await client.CallToolAsync(tool, arguments, cancellationToken: Ct);
        Assert.True(result.IsError != true, $"{tool}: {Text(result)}");
        return JsonDocument.Parse(Text(result)).RootElement;
    }

    private static async Task<List<JsonElement>> CallArrayAsync(McpClient client, string tool, Dictionary<string, object?> arguments) =>
        (await CallAsync(client, tool, arguments)).EnumerateArray().ToList();

    private static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Select(block => block.Text));

    private static async Task<List<JsonElement>> ChangesAsync(HttpClient http, string accessToken)
    {
        var page = JsonDocument.Parse(await (await http.GetWithTokenAsync("/api/v1/agent/memory/changes", accessToken)).Content.ReadAsStringAsync(Ct));
        return page.RootElement.GetProperty("changes").EnumerateArray().ToList();
    }
}
