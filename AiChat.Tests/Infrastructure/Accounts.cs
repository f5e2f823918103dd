using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace AiChat.Tests.Infrastructure;

public sealed record TokenPair(string AccessToken, string RefreshToken, string TokenType, int ExpiresIn, JsonElement User)
{
    public Guid UserId => User.GetProperty("id").GetGuid();
}

/// <summary>Registers and logs in through the real endpoints; every password and token used is registered as a secret for the log check.</summary>
public static class Accounts
{
    public static string NewEmail(string name = "user") => $"{name}-{Guid.NewGuid():N}@example.com";

    public static string NewPassword() => LogSink.Secret($"pw-{Guid.NewGuid():N}");

    public static async Task<TokenPair> RegisterAsync(this HttpClient client, string? email = null, string? password = null, string? name = "Ana")
    {
        var response = await client.PostAsJsonAsync("/api/v1/auth/register",
            new { email = email ?? NewEmail(), password = LogSink.Secret(password ?? NewPassword()), name }, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"register: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return await ReadPairAsync(response);
    }

    public static async Task<TokenPair> LoginAsync(this HttpClient client, string email, string password)
    {
        var response = await client.PostAsJsonAsync("/api/v1/auth/login", new { email, password }, TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"login: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return await ReadPairAsync(response);
    }

    public static async Task<TokenPair> ReadPairAsync(HttpResponseMessage response)
    {
        var pair = (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).Deserialize<TokenPair>(
            new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;
        LogSink.Secret(pair.AccessToken);
        LogSink.Secret(pair.RefreshToken);
        return pair;
    }

    public static HttpClient As(this HttpClient client, string accessToken)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return client;
    }

    public static Task<HttpResponseMessage> GetWithTokenAsync(this HttpClient client, string path, string accessToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    public static Task<HttpResponseMessage> SendWithTokenAsync(this HttpClient client, HttpMethod method, string path, string accessToken, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return client.SendAsync(request, TestContext.Current.CancellationToken);
    }
}
