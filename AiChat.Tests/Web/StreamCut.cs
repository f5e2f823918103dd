namespace AiChat.Tests.Web;

/// <summary>Cuts a recorded event stream short, as a dropped connection would: the events up to a given text delta.</summary>
public static class Sse
{
    /// <summary>The stream's text through its <paramref name="deltas"/>-th <c>message.delta</c>, and that event's id.</summary>
    public static (string Head, int LastId) Cut(string stream, int deltas)
    {
        var events = stream.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        var kept = new List<string>();
        var lastId = 0;
        var seen = 0;
        foreach (var block in events)
        {
            kept.Add(block);
            var id = block.Split('\n').FirstOrDefault(line => line.StartsWith("id: ", StringComparison.Ordinal));
            if (id is not null)
            {
                lastId = int.Parse(id[4..], System.Globalization.CultureInfo.InvariantCulture);
            }

            if (block.Contains("event: message.delta", StringComparison.Ordinal) && ++seen == deltas)
            {
                return (string.Join("\n\n", kept) + "\n\n", lastId);
            }
        }

        throw new InvalidOperationException($"The stream had {seen} text deltas, fewer than {deltas}: {stream}");
    }
}
