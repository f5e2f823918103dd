using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace AiChat.Tests.Infrastructure;

/// <summary>A personal API key made through the real endpoint; the key is registered as a secret for the log check.</summary>
public sealed record TestApiKey(Guid Id, string Key, JsonElement Answer);

public static class ApiKeys
{
    public static async Task<TestApiKey> CreateAsync(HttpClient client, string accessToken, string name = "laptop", DateTimeOffset? expiresAt = null)
    {
        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/api-keys", accessToken, new { name, expires_at = expiresAt });
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create key: {(int)response.StatusCode} {body}");
        var answer = JsonDocument.Parse(body).RootElement;
        var key = LogSink.Secret(answer.GetProperty("key").GetString()!);
        return new TestApiKey(answer.GetProperty("id").GetGuid(), key, answer);
    }

    public static async Task<JsonElement> ListAsync(HttpClient client, string accessToken, string path = "/api/v1/user/api-keys")
    {
        var response = await client.GetWithTokenAsync(path, accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).GetProperty("keys");
    }
}
