using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Chat;

/// <summary>The conversation endpoints as a client calls them, for tests of what happens in one conversation.</summary>
internal static class ConversationRequests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<Guid> CreateAsync(HttpClient client, string accessToken, string? title = null)
    {
        var response = await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/conversations", accessToken, title is null ? new { } : new { title });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
    }

    public static async Task<Guid> DefaultAsync(HttpClient client, string accessToken)
    {
        var list = await (await client.GetWithTokenAsync("/api/v1/conversations", accessToken)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        return list.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("is_default").GetBoolean()).GetProperty("id").GetGuid();
    }

    public static async Task<JsonElement> GetAsync(HttpClient client, string accessToken, Guid conversationId)
    {
        var response = await client.GetWithTokenAsync($"/api/v1/conversations/{conversationId}", accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>The conversation's title once it has one (polled with a deadline: a generated title comes after the turn).</summary>
    public static Task<string> TitleAsync(HttpClient client, string accessToken, Guid conversationId) =>
        ChatTests.WaitForAsync(async () => (await GetAsync(client, accessToken, conversationId)).GetProperty("title").GetString());

    public static HttpRequestMessage Send(string accessToken, Guid conversationId, string content) =>
        WithToken(new HttpRequestMessage(HttpMethod.Post, $"/api/v1/conversations/{conversationId}/messages") { Content = JsonContent.Create(new { content }) }, accessToken, null);

    public static HttpRequestMessage Regenerate(string accessToken, Guid conversationId, Guid messageId, string? idempotencyKey = null) =>
        WithToken(new HttpRequestMessage(HttpMethod.Post, $"/api/v1/conversations/{conversationId}/messages/{messageId}/regenerate"), accessToken, idempotencyKey);

    /// <summary>Sends and reads the JSON answer, which must be 200.</summary>
    public static async Task<JsonElement> AnswerAsync(HttpClient client, HttpRequestMessage request)
    {
        var response = await client.SendAsync(ChatTests.Json(request), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>The conversation's history, newest first.</summary>
    public static async Task<List<JsonElement>> MessagesAsync(HttpClient client, string accessToken, Guid conversationId)
    {
        var response = await client.GetWithTokenAsync($"/api/v1/conversations/{conversationId}/messages", accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("messages").EnumerateArray().ToList();
    }

    public static async Task<List<JsonElement>> AlternativesAsync(HttpClient client, string accessToken, Guid conversationId, Guid messageId)
    {
        var response = await client.GetWithTokenAsync($"/api/v1/conversations/{conversationId}/messages/{messageId}/alternatives", accessToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("alternatives").EnumerateArray().ToList();
    }

    private static HttpRequestMessage WithToken(HttpRequestMessage request, string accessToken, string? idempotencyKey)
    {
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return request;
    }
}
