using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Chat;

/// <summary>The conversations endpoints as the tests call them, and what the tests read back from them and from the store.</summary>
internal static class Conversations
{
    public const string Path = "/api/v1/conversations";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static Task<HttpResponseMessage> PostAsync(HttpClient client, string token, object? body) =>
        client.SendWithTokenAsync(HttpMethod.Post, Path, token, body);

    /// <summary>Creates one and returns its DTO (asserting the 201 and its Location).</summary>
    public static async Task<JsonElement> CreateAsync(HttpClient client, string token, string? title = null, string? model = null)
    {
        var response = await PostAsync(client, token, new { title, model });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.Equal($"{Path}/{created.GetProperty("id").GetGuid()}", response.Headers.Location?.OriginalString);
        return created;
    }

    public static async Task<Guid> CreateIdAsync(HttpClient client, string token, string? title = null, string? model = null) =>
        (await CreateAsync(client, token, title, model)).GetProperty("id").GetGuid();

    public static async Task<JsonElement> GetAsync(HttpClient client, string token, Guid conversationId)
    {
        var response = await client.GetWithTokenAsync($"{Path}/{conversationId}", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>One page of the list (<paramref name="query"/> starts with <c>?</c> when given).</summary>
    public static async Task<JsonElement> ListAsync(HttpClient client, string token, string query = "")
    {
        var response = await client.GetWithTokenAsync(Path + query, token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    public static async Task<List<Guid>> ListIdsAsync(HttpClient client, string token, string query = "") =>
        (await ListAsync(client, token, query)).GetProperty("conversations").EnumerateArray().Select(c => c.GetProperty("id").GetGuid()).ToList();

    public static Task<HttpResponseMessage> PatchAsync(HttpClient client, string token, Guid conversationId, object body) =>
        client.SendWithTokenAsync(HttpMethod.Patch, $"{Path}/{conversationId}", token, body);

    public static Task<HttpResponseMessage> DeleteAsync(HttpClient client, string token, Guid conversationId) =>
        client.SendWithTokenAsync(HttpMethod.Delete, $"{Path}/{conversationId}", token);

    /// <summary>A message to the conversation, without an Accept header (add one: <see cref="ChatTests.Json"/> or <see cref="SseReader.OpenAsync"/>).</summary>
    public static HttpRequestMessage Send(string token, Guid conversationId, string content, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"{Path}/{conversationId}/messages") { Content = JsonContent.Create(new { content }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return request;
    }

    /// <summary>Sends a message and asks for the JSON answer.</summary>
    public static Task<HttpResponseMessage> SendAsync(HttpClient client, string token, Guid conversationId, string content, string? idempotencyKey = null) =>
        client.SendAsync(ChatTests.Json(Send(token, conversationId, content, idempotencyKey)), Ct);

    /// <summary>Sends a message and returns its JSON answer, asserting a 200.</summary>
    public static async Task<JsonElement> AnswerAsync(HttpClient client, string token, Guid conversationId, string content)
    {
        var response = await SendAsync(client, token, conversationId, content);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<JsonElement> MessagesPageAsync(HttpClient client, string token, Guid conversationId, string query = "")
    {
        var response = await client.GetWithTokenAsync($"{Path}/{conversationId}/messages{query}", token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>The conversation's messages, newest first (one page of up to 200).</summary>
    public static async Task<List<JsonElement>> MessagesAsync(HttpClient client, string token, Guid conversationId) =>
        (await MessagesPageAsync(client, token, conversationId, "?limit=200")).GetProperty("messages").EnumerateArray().ToList();

    public static List<string?> Contents(IEnumerable<JsonElement> messages) => messages.Select(m => m.GetProperty("content").GetString()).ToList();

    /// <summary>A count straight from the API's store (to see what a request stored or deleted).</summary>
    public static async Task<long> CountAsync(ApiFactory api, string sql, object? parameters = null)
    {
        await using var connection = await api.Services.GetRequiredService<AiChatDb>().OpenAsync(Ct);
        return await connection.ExecuteScalarAsync<long>(sql, parameters);
    }

    /// <summary>How many messages, turns and turn events the store holds for a conversation and the given turns of it.</summary>
    public static async Task<(long Messages, long Turns, long Events)> RowsAsync(ApiFactory api, Guid conversationId, IReadOnlyList<Guid> turnIds) => (
        await CountAsync(api, "SELECT COUNT(*) FROM messages WHERE conversation_id = @conversationId", new { conversationId }),
        await CountAsync(api, "SELECT COUNT(*) FROM turns WHERE conversation_id = @conversationId", new { conversationId }),
        await EventsOfAsync(api, turnIds));

    private static async Task<long> EventsOfAsync(ApiFactory api, IReadOnlyList<Guid> turnIds)
    {
        long events = 0;
        foreach (var turnId in turnIds)
        {
            events += await CountAsync(api, "SELECT COUNT(*) FROM turn_events WHERE turn_id = @turnId", new { turnId });
        }

        return events;
    }
}

/// <summary>
/// An LLM provider's model held at a gate: every call waits until the test opens it, so turns can be kept running at
/// the same time. It counts the calls waiting now and the most that waited together (two waiting at once is two turns
/// running at once). Once open, every call answers at once.
/// </summary>
public sealed class GatedChatClient(string answer = "held answer") : IChatClient
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _held;
    private int _maxHeld;
    private int _calls;

    public string Answer => answer;

    public int Held => Volatile.Read(ref _held);

    public int MaxHeld => Volatile.Read(ref _maxHeld);

    public int Calls => Volatile.Read(ref _calls);

    public void Open() => _gate.TrySetResult();

    /// <summary>Returns once <paramref name="count"/> calls wait at the gate together (polls, with a deadline).</summary>
    public Task WaitUntilHeldAsync(int count) => ChatTests.WaitForAsync(() => Task.FromResult(Held >= count ? (object)true : null));

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _calls);
        var held = Interlocked.Increment(ref _held);
        int most;
        while ((most = Volatile.Read(ref _maxHeld)) < held && Interlocked.CompareExchange(ref _maxHeld, held, most) != most)
        {
        }

        try
        {
            await _gate.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }

        yield return new ChatResponseUpdate(ChatRole.Assistant, answer) { FinishReason = ChatFinishReason.Stop };
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = 10, OutputTokenCount = 2 })]);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}

/// <summary>
/// Wraps a model so that its first <paramref name="parties"/> calls wait for each other before any goes on (a barrier):
/// that many turns are then provably at the model at once, and what they do next (their memory writes) races.
/// </summary>
public sealed class BarrierChatClient(IChatClient inner, int parties) : DelegatingChatClient(inner)
{
    private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _arrived;

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var arrived = Interlocked.Increment(ref _arrived);
        if (arrived <= parties)
        {
            if (arrived == parties)
            {
                _all.TrySetResult();
            }

            // A barrier that never fills fails the turn (and the test) instead of hanging it.
            await _all.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }

        await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            yield return update;
        }
    }
}
