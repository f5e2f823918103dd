using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Api;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Users;

/// <summary>
/// Personal API keys end to end through the gateway, on SQLite and Postgres: shown once and stored as a hash, accepted on
/// /v1 and /mcp only, last use recorded at most once a minute, expiry and revocation honoured at once, other users' keys
/// out of reach, removed with the account, and an admin's list and revoke.
/// </summary>
[Trait("Category", "Users")]
public sealed class ApiKeyTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AKeyIsShownOnceAndOnlyItsHashIsStored(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();

        var created = await ApiKeys.CreateAsync(client, pair.AccessToken, "laptop");

        Assert.StartsWith("aik_", created.Key);
        Assert.Equal(32, Base64Url(created.Key["aik_".Length..]).Length);
        Assert.Equal(created.Key[..12], created.Answer.GetProperty("prefix").GetString());
        Assert.Equal("laptop", created.Answer.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Null, created.Answer.GetProperty("last_used_at").ValueKind);

        var listed = Assert.Single((await ApiKeys.ListAsync(client, pair.AccessToken)).EnumerateArray());
        Assert.Equal(created.Id, listed.GetProperty("id").GetGuid());
        Assert.Equal(created.Key[..12], listed.GetProperty("prefix").GetString());
        Assert.False(listed.TryGetProperty("key", out _));
        var export = await (await client.GetWithTokenAsync("/api/v1/user/export", pair.AccessToken)).Content.ReadAsStringAsync(Ct);
        Assert.Contains(created.Id.ToString(), export);
        Assert.DoesNotContain(created.Key, export);

        await using var connection = await system.Api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        var row = Assert.Single(await connection.QueryAsync("SELECT * FROM api_keys WHERE user_id = @userId", new { userId = pair.UserId }));
        var columns = (IDictionary<string, object?>)row;
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(created.Key))), columns["key_hash"]);
        Assert.DoesNotContain(columns.Values, value => value?.ToString()?.Contains(created.Key["aik_".Length..][..16], StringComparison.Ordinal) == true
            && value.ToString() != columns["key_hash"]?.ToString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AKeySignsInOnTheOtherClientsEndpointsOnlyAndRecordsItsLastUseAtMostOnceAMinute(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken);

        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);
        var firstUse = await LastUsedAsync(system.Api, key.Id);
        Assert.NotNull(firstUse);
        Assert.Equal(firstUse, ListedLastUse(await ApiKeys.ListAsync(client, pair.AccessToken)));

        // Within the minute, another use writes nothing.
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);
        Assert.Equal(firstUse, await LastUsedAsync(system.Api, key.Id));

        // Once the recorded use is over a minute old, the next one is recorded.
        var old = DateTimeOffset.UtcNow.AddMinutes(-5);
        await ExecuteAsync(system.Api, "UPDATE api_keys SET last_used_at = @old WHERE id = @id", new { old, id = key.Id });
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);
        Assert.True(await LastUsedAsync(system.Api, key.Id) > old.AddMinutes(4));

        // Not a credential for AiChat's own API.
        foreach (var path in new[] { "/api/v1/user/profile", "/api/v1/user/api-keys", "/api/v1/agent/memory" })
        {
            await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync(path, key.Key), HttpStatusCode.Unauthorized, "unauthorized");
        }
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnExpiredKeyIsRefusedAndAnExpiryInThePastIsNotAccepted(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();

        var past = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/api-keys", pair.AccessToken, new { name = "old", expires_at = DateTimeOffset.UtcNow.AddMinutes(-1) });
        await ApiPipelineTests.AssertProblemAsync(past, HttpStatusCode.UnprocessableEntity, "validation_failed");
        var blank = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/api-keys", pair.AccessToken, new { name = " " });
        await ApiPipelineTests.AssertProblemAsync(blank, HttpStatusCode.UnprocessableEntity, "validation_failed");
        Assert.Equal(0, (await ApiKeys.ListAsync(client, pair.AccessToken)).GetArrayLength());

        var expiresAt = DateTimeOffset.UtcNow.AddDays(30);
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken, "a month", expiresAt);
        Assert.Equal(expiresAt.ToUnixTimeSeconds(), key.Answer.GetProperty("expires_at").GetDateTimeOffset().ToUnixTimeSeconds());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);

        await ExecuteAsync(system.Api, "UPDATE api_keys SET expires_at = @at WHERE id = @id", new { at = DateTimeOffset.UtcNow.AddSeconds(-1), id = key.Id });
        var refused = await client.GetWithTokenAsync("/v1/models", key.Key);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("authentication_error", JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnotherUsersKeyIsOutOfReachAndARevokedKeyIsRefusedAtOnce(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var owner = await client.RegisterAsync();
        var other = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, owner.AccessToken);

        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/user/api-keys/{key.Id}", other.AccessToken), HttpStatusCode.NotFound, "not_found");
        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user/api-keys/not-an-id", owner.AccessToken), HttpStatusCode.NotFound, "not_found");
        Assert.Equal(0, (await ApiKeys.ListAsync(client, other.AccessToken)).GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/user/api-keys/{key.Id}", owner.AccessToken)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);
        Assert.Equal(0, (await ApiKeys.ListAsync(client, owner.AccessToken)).GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendWithTokenAsync(HttpMethod.Delete, $"/api/v1/user/api-keys/{key.Id}", owner.AccessToken)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task DeletingTheAccountDeletesItsKeys(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var first = await ApiKeys.CreateAsync(client, pair.AccessToken, "one");
        await ApiKeys.CreateAsync(client, pair.AccessToken, "two");

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, "/api/v1/user", pair.AccessToken)).StatusCode);

        Assert.Equal(0, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM api_keys WHERE user_id = @userId", new { userId = pair.UserId }));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/v1/models", first.Key)).StatusCode);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AnAdminListsAndRevokesAnyUsersKeysAndNobodyElseMay(StoreProvider provider)
    {
        await using var system = RunningSystem.Start(await OnAsync(new ApiFactory(), provider));
        using var client = system.GatewayClient();
        var admin = await client.RegisterAdminAsync(system.Api);
        var user = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, user.AccessToken, "script");
        var path = $"/api/v1/admin/users/{user.UserId}/api-keys";

        var listed = Assert.Single((await ApiKeys.ListAsync(client, admin.AccessToken, path)).EnumerateArray());
        Assert.Equal(key.Id, listed.GetProperty("id").GetGuid());
        Assert.False(listed.TryGetProperty("key", out _));
        await ApiPipelineTests.AssertProblemAsync(await client.GetWithTokenAsync(path, user.AccessToken), HttpStatusCode.Forbidden, "forbidden");
        await ApiPipelineTests.AssertProblemAsync(
            await client.SendWithTokenAsync(HttpMethod.Delete, $"{path}/{key.Id}", user.AccessToken), HttpStatusCode.Forbidden, "forbidden");
        await ApiPipelineTests.AssertProblemAsync(
            await client.GetWithTokenAsync($"/api/v1/admin/users/{Guid.NewGuid()}/api-keys", admin.AccessToken), HttpStatusCode.NotFound, "not_found");

        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Delete, $"{path}/{key.Id}", admin.AccessToken)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/v1/models", key.Key)).StatusCode);
        Assert.Equal(0, (await ApiKeys.ListAsync(client, user.AccessToken)).GetArrayLength());
    }

    private static byte[] Base64Url(string text) => Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/') + new string('=', (4 - text.Length % 4) % 4));

    private static DateTimeOffset? ListedLastUse(JsonElement keys) =>
        keys[0].GetProperty("last_used_at") is { ValueKind: JsonValueKind.String } value ? value.GetDateTimeOffset() : null;

    private static async Task<DateTimeOffset?> LastUsedAsync(ApiFactory api, Guid id)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.QuerySingleAsync<DateTimeOffset?>("SELECT last_used_at FROM api_keys WHERE id = @id", new { id });
    }

    private static async Task ExecuteAsync(ApiFactory api, string sql, object parameters)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        Assert.Equal(1, await connection.ExecuteAsync(sql, parameters));
    }

    private async Task<ApiFactory> OnAsync(ApiFactory api, StoreProvider provider) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;
}
