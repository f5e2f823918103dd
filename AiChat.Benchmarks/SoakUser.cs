using System.Net.Http.Json;
using System.Text.Json;

namespace AiChat.Benchmarks;

/// <summary>
/// One soak user: a closed loop of what a person does in a chat client, through the gateway's public HTTP API only,
/// chosen by a random generator seeded by the user's number (the same mix on every run): chat turns streamed to the
/// end, turns resumed with <c>Last-Event-ID</c> after the client dropped the connection mid-turn, turns cancelled,
/// turns whose client leaves and never comes back, history pages, memory edits and reads, search, conversations
/// created and renamed. Every answer is recorded by kind; answers the request cannot earn are recorded as unexpected.
/// </summary>
public sealed class SoakUser(int number, BenchUser user, Uri gateway, HttpClient http, SoakRecord record)
{
    public const string Turn = "chat turn (SSE)";
    public const string Resume = "chat turn resumed (Last-Event-ID)";
    public const string Cancel = "chat turn cancelled";
    public const string Abandon = "chat turn abandoned by its client";
    public const string History = "history page";
    public const string MemoryEdit = "memory edit";
    public const string MemoryRead = "memory read";
    public const string Search = "search";
    public const string Create = "conversation create";
    public const string Rename = "conversation rename";

    public static readonly string[] Kinds = [Turn, Resume, Cancel, Abandon, History, MemoryEdit, MemoryRead, Search, Create, Rename];

    // The mix, in actions per hundred.
    private static readonly (string Kind, int Weight)[] Mix =
        [(Turn, 38), (Resume, 8), (Cancel, 3), (Abandon, 3), (History, 16), (MemoryEdit, 8), (MemoryRead, 4), (Search, 10), (Create, 5), (Rename, 5)];

    // Refusals a turn may meet in a correct system: its conversation still answers (an abandoned turn), the user's
    // other turns, a full queue, an open circuit. Nothing is stored for them.
    private static readonly string[] TurnRefusals = ["409 conversation_busy", "429 too_many_turns", "503 server_busy", "503 upstream_unavailable"];

    private readonly Random _random = new(number);
    private int _sent;

    public BenchUser User => user;

    public async Task RunAsync(CancellationToken stop)
    {
        user.Conversations.Add(await CreateConversationAsync());
        while (!stop.IsCancellationRequested)
        {
            await ActAsync(Pick());
            try
            {
                await Task.Delay(_random.Next(10, 60), stop); // a person's pause, and room on a shared machine
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private string Pick()
    {
        var roll = _random.Next(Mix.Sum(m => m.Weight));
        foreach (var (kind, weight) in Mix)
        {
            if ((roll -= weight) < 0)
            {
                return kind;
            }
        }

        return Turn;
    }

    private Task ActAsync(string kind) => kind switch
    {
        Turn or Resume or Cancel or Abandon => TurnAsync(kind),
        History => HistoryAsync(),
        MemoryEdit => MemoryEditAsync(),
        MemoryRead => SendAsync(MemoryRead, HttpMethod.Get, "/api/v1/agent/memory", null),
        Search => SendAsync(Search, HttpMethod.Get, $"/api/v1/search?query={Words[_random.Next(Words.Length)]}&limit=10", null),
        Create => CreateAsync(),
        _ => SendAsync(Rename, HttpMethod.Patch, $"/api/v1/conversations/{Conversation()}", new { title = $"Soak {number} renamed {_random.Next(1000)}" }),
    };

    private static readonly string[] Words = ["Porto", "weather", "books", "plans", "soak", "nothing-matches-this"];

    private Guid Conversation() => user.Conversations[_random.Next(user.Conversations.Count)];

    private async Task TurnAsync(string kind)
    {
        var conversation = Conversation();
        // Unique per message, so the history shows each one; cancels and resumes ask the stub for a slow answer.
        var content = $"Soak user {number}, message {++_sent}: what about {Words[_random.Next(Words.Length - 1)]}?"
            + (kind is Resume or Cancel ? $" {StubServer.SlowMarker}" : "");
        using var request = Http.Authorized(HttpMethod.Post, new Uri(gateway, Http.MessagesPath(conversation)), user.Token);
        request.Content = JsonContent.Create(new { content });
        request.Headers.Accept.ParseAdd("text/event-stream");
        var stream = new SoakStream();
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            if (!await AcceptedAsync(kind, response, TurnRefusals))
            {
                return;
            }

            var turnId = response.Headers.TryGetValues("X-Turn-Id", out var ids) ? Guid.Parse(ids.First()) : Guid.Empty;
            record.Accepted.Enqueue(new AcceptedMessage(user, conversation, turnId, content));
            Func<SoakStream, bool> leaveAt = kind switch
            {
                Resume => s => s.Deltas >= 2,   // mid-turn: the slow answer has ~50 deltas to go
                Cancel => s => s.Deltas >= 1,
                Abandon => s => s.TurnId != Guid.Empty,
                _ => _ => false,
            };
            await ReadAsync(stream, response, leaveAt);
        }

        if (kind == Abandon && stream.Outcome is null)
        {
            record.Outcome("abandoned: the client left mid-turn and never came back");
            return;
        }

        if (kind == Cancel && stream.Outcome is null)
        {
            using var cancel = Http.Authorized(HttpMethod.Post, new Uri(gateway, $"/api/v1/chat/turns/{stream.TurnId}/cancel"), user.Token);
            using var cancelled = await http.SendAsync(cancel);
            await AcceptedAsync(Cancel + ": the cancel request", cancelled, ["409 turn_already_finished"]);
        }

        // A resume reconnects after the drop; a cancelled turn's stream is followed to its end the same way.
        if (stream.Outcome is null && kind is Resume or Cancel)
        {
            using var follow = Http.Authorized(HttpMethod.Get, new Uri(gateway, $"/api/v1/chat/turns/{stream.TurnId}/events"), user.Token);
            follow.Headers.Accept.ParseAdd("text/event-stream");
            follow.Headers.Add("Last-Event-ID", stream.LastId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var resumed = await http.SendAsync(follow, HttpCompletionOption.ResponseHeadersRead);
            if (await AcceptedAsync(kind + ": the reconnect", resumed, []))
            {
                await ReadAsync(stream, resumed, _ => false);
            }
        }

        if (stream.Outcome is null)
        {
            record.Unexpected.Enqueue($"{kind}: turn {stream.TurnId} — the stream ended without turn.completed or turn.failed");
            return;
        }

        record.Outcome(stream.Outcome == SoakStream.Completed ? "completed" : $"failed: {stream.Outcome}");
        if (stream.Outcome == SoakStream.Completed)
        {
            record.Completed.Enqueue(new CompletedAnswer(user, conversation, stream.AssistantMessageId, stream.Text));
        }
    }

    private async Task ReadAsync(SoakStream stream, HttpResponseMessage response, Func<SoakStream, bool> leaveAt)
    {
        try
        {
            await stream.ReadAsync(await response.Content.ReadAsStreamAsync(), leaveAt, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            record.Unexpected.Enqueue($"turn {stream.TurnId}: the stream broke ({ex.GetType().Name}: {ex.Message})");
        }

        foreach (var broken in stream.Breaks)
        {
            record.Unexpected.Enqueue(broken);
        }

        stream.Breaks.Clear();
    }

    private async Task HistoryAsync()
    {
        var path = $"/api/v1/conversations/{Conversation()}/messages?limit=20";
        using var request = Http.Authorized(HttpMethod.Get, new Uri(gateway, path), user.Token);
        using var response = await http.SendAsync(request);
        if (await AcceptedAsync(History, response, []) && _random.Next(2) == 0
            && (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("next_cursor").GetString() is { } cursor)
        {
            await SendAsync(History, HttpMethod.Get, $"{path}&before={Uri.EscapeDataString(cursor)}", null);
        }
    }

    private Task MemoryEditAsync() =>
        SendAsync(MemoryEdit, HttpMethod.Post, "/api/v1/agent/memory", new
        {
            blocks = new[] { new { label = "human", value = $"Soak user {number}; likes {Words[_random.Next(Words.Length - 1)]}; edit {_random.Next(1_000_000)}." } },
        });

    private async Task CreateAsync()
    {
        var created = await CreateConversationAsync();
        if (created != Guid.Empty)
        {
            user.Conversations.Add(created);
        }
    }

    /// <summary>A conversation with a title of its own, so no title call follows its first exchange: every LLM call is a turn's.</summary>
    private async Task<Guid> CreateConversationAsync()
    {
        using var request = Http.Authorized(HttpMethod.Post, new Uri(gateway, "/api/v1/conversations"), user.Token);
        request.Content = JsonContent.Create(new { title = $"Soak {number}" });
        using var response = await http.SendAsync(request);
        return await AcceptedAsync(Create, response, [])
            ? (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid()
            : Guid.Empty;
    }

    private async Task SendAsync(string kind, HttpMethod method, string path, object? body)
    {
        using var request = Http.Authorized(method, new Uri(gateway, path), user.Token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await http.SendAsync(request);
        await AcceptedAsync(kind, response, []);
        await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>Records the answer; true for a 2xx. A refusal outside <paramref name="expected"/> is unexpected.</summary>
    private async Task<bool> AcceptedAsync(string kind, HttpResponseMessage response, string[] expected)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            record.Answer(kind, status.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return true;
        }

        var text = await response.Content.ReadAsStringAsync();
        var code = "(no problem code)";
        try
        {
            using var problem = JsonDocument.Parse(text);
            code = problem.RootElement.TryGetProperty("code", out var named) ? named.GetString() ?? code : code;
        }
        catch (JsonException)
        {
        }

        var answer = $"{status} {code}";
        record.Answer(kind, answer);
        if (!expected.Contains(answer))
        {
            record.Unexpected.Enqueue($"{kind}: {answer} {text[..Math.Min(text.Length, 300)]}");
        }

        return false;
    }
}
