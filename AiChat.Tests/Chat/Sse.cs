using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace AiChat.Tests.Chat;

public sealed record SseEvent(int Id, string Event, JsonElement Data);

/// <summary>Reads a Server-Sent Events response the way a browser's EventSource does.</summary>
public sealed class SseReader(Stream stream)
{
    private readonly StreamReader _reader = new(stream, Encoding.UTF8);

    public int Comments { get; private set; }

    public static async Task<(HttpResponseMessage Response, SseReader Reader)> OpenAsync(HttpClient client, HttpRequestMessage request)
    {
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        return (response, new SseReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken)));
    }

    public static HttpRequestMessage Send(string accessToken, string content, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/message") { Content = JsonContent.Create(new { content }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return request;
    }

    public static HttpRequestMessage Resume(string accessToken, Guid turnId, int? lastEventId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/chat/turns/{turnId}/events");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return request;
    }

    /// <summary>The next event, or null at the end of the stream.</summary>
    public async Task<SseEvent?> NextAsync(CancellationToken cancellationToken = default)
    {
        int? id = null;
        string? name = null;
        var data = new StringBuilder();
        while (await _reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (name is not null)
                {
                    return new SseEvent(id ?? 0, name, JsonDocument.Parse(data.ToString()).RootElement.Clone());
                }

                continue;
            }

            if (line.StartsWith(':'))
            {
                Comments++;
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = int.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Append(line[6..]);
            }
        }

        return null;
    }

    /// <summary>Every event up to the end of the turn (or of the stream).</summary>
    public async Task<List<SseEvent>> ReadAllAsync(TimeSpan? timeout = null)
    {
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancellation.CancelAfter(timeout ?? TimeSpan.FromSeconds(60));
        var events = new List<SseEvent>();
        while (await NextAsync(cancellation.Token) is { } next)
        {
            events.Add(next);
            if (next.Event is "turn.completed" or "turn.failed")
            {
                break;
            }
        }

        return events;
    }
}
