using System.Net;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Agents;

/// <summary>
/// A turn as a client drives it: <c>POST /api/v1/chat/message</c> (or a conversation's <c>/messages</c>) with
/// <c>Accept: text/event-stream</c>, read to the turn's end; and what the tests read from the events.
/// </summary>
internal static class AgentTurns
{
    /// <summary>The API on the given store (a fresh Postgres database, or its own SQLite file).</summary>
    public static async Task<ApiFactory> OnAsync(this ApiFactory api, StoreProvider provider, PostgresServer postgres) =>
        provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api;

    /// <summary>Sends a message on the single-chat endpoint, or to <paramref name="conversationId"/>, and reads every event of its turn.</summary>
    public static async Task<List<SseEvent>> StreamAsync(HttpClient client, string token, string content, Guid? conversationId = null)
    {
        var (response, reader) = await OpenAsync(client, token, content, conversationId);
        using (response)
        {
            var events = await reader.ReadAllAsync();
            Assert.Contains(events[^1].Event, (string[])["turn.completed", "turn.failed"]);
            return events;
        }
    }

    /// <summary>Opens the stream of a message's turn (asserting the 200) without reading it.</summary>
    public static async Task<(HttpResponseMessage Response, SseReader Reader)> OpenAsync(HttpClient client, string token, string content, Guid? conversationId = null)
    {
        var request = conversationId is { } id ? Conversations.Send(token, id, content) : SseReader.Send(token, content);
        var (response, reader) = await SseReader.OpenAsync(client, request);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Assert.Fail($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)}");
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return (response, reader);
    }

    /// <summary>The assistant's answer as <c>turn.completed</c> carries it (the turn must have completed).</summary>
    public static string Answer(this IEnumerable<SseEvent> events) =>
        events.Single(e => e.Event == "turn.completed").Data.GetProperty("assistant_message").GetProperty("content").GetString()!;

    /// <summary>The problem document of the turn's <c>turn.failed</c>, which must be its last event.</summary>
    public static JsonElement Failure(this IReadOnlyList<SseEvent> events)
    {
        Assert.Equal("turn.failed", events[^1].Event);
        Assert.DoesNotContain(events, e => e.Event == "turn.completed");
        return events[^1].Data;
    }

    /// <summary>The events' names, in order, without the deltas (whose number depends on chunking).</summary>
    public static List<string> Steps(this IEnumerable<SseEvent> events) =>
        events.Where(e => e.Event is not ("message.delta" or "reasoning.delta")).Select(e => e.Event).ToList();

    /// <summary>The text the <c>message.delta</c> events carried, joined.</summary>
    public static string Streamed(this IEnumerable<SseEvent> events) =>
        string.Concat(events.Where(e => e.Event == "message.delta").Select(e => e.Data.GetProperty("text").GetString()));

    public static IEnumerable<JsonElement> Named(this IEnumerable<SseEvent> events, string name) =>
        events.Where(e => e.Event == name).Select(e => e.Data);
}
