using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AiChat.Benchmarks;

/// <summary>
/// One turn's event stream as a soak client reads it, across reconnects: the text of its <c>message.delta</c> events,
/// the last event id (the <c>Last-Event-ID</c> of a resume), how it ended, and any break of the contract seen on the
/// way (an id that is not the one after the last, a <c>turn.completed</c> whose message is not the streamed text).
/// </summary>
public sealed class SoakStream
{
    private readonly StringBuilder _text = new();

    public Guid TurnId { get; private set; }

    public Guid AssistantMessageId { get; private set; }

    public int LastId { get; private set; }

    public int Deltas { get; private set; }

    public string Text => _text.ToString();

    /// <summary><see cref="Completed"/>, or the <c>code</c> of the <c>turn.failed</c> problem; null while the turn runs.</summary>
    public string? Outcome { get; private set; }

    public const string Completed = "completed";

    public List<string> Breaks { get; } = [];

    /// <summary>Reads frames until the stream ends, the turn ends, or <paramref name="enough"/> says the client stops here.</summary>
    public async Task ReadAsync(Stream body, Func<SoakStream, bool> enough, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(body);
        string? id = null, name = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                if (line.StartsWith("id: ", StringComparison.Ordinal))
                {
                    id = line[4..];
                }
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line[7..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data.Append(line, 6, line.Length - 6);
                }

                continue;
            }

            if (name is null)
            {
                continue; // a keep-alive comment
            }

            Take(id, name, data.ToString());
            (id, name) = (null, null);
            data.Clear();
            if (Outcome is not null || enough(this))
            {
                return;
            }
        }
    }

    private void Take(string? id, string name, string data)
    {
        if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || seq != LastId + 1)
        {
            Breaks.Add($"turn {TurnId}: event '{name}' has id {id ?? "(none)"} after {LastId}");
        }

        LastId = seq;
        using var document = JsonDocument.Parse(data);
        var root = document.RootElement;
        switch (name)
        {
            case "turn.started":
                TurnId = root.GetProperty("turn_id").GetGuid();
                AssistantMessageId = root.GetProperty("assistant_message_id").GetGuid();
                break;
            case "message.delta":
                _text.Append(root.GetProperty("text").GetString());
                Deltas++;
                break;
            case "turn.completed":
                Outcome = Completed;
                var message = root.GetProperty("assistant_message");
                if (message.GetProperty("content").GetString() != Text || message.GetProperty("id").GetGuid() != AssistantMessageId)
                {
                    Breaks.Add($"turn {TurnId}: turn.completed carries another message than the one streamed");
                }

                break;
            case "turn.failed":
                Outcome = root.GetProperty("code").GetString() ?? "(no code)";
                break;
        }
    }
}
