using System.Text.RegularExpressions;

namespace AiChat.Api.Data;

/// <summary>Full-text queries on both stores from a user's words: a Postgres <c>tsquery</c> and an FTS5 <c>MATCH</c>.</summary>
public static partial class FullText
{
    /// <summary>Words of a search, lower-cased and stripped of anything a full-text query language could read as syntax.</summary>
    public static IReadOnlyList<string> Terms(string? query) =>
        query is null ? [] : WordPattern().Matches(query).Select(m => m.Value.ToLowerInvariant()).Where(w => w.Length > 1).Distinct().Take(16).ToList();

    /// <summary>Any of the words matches: a Postgres tsquery (stemmed by to_tsquery) and an FTS5 MATCH of quoted terms.</summary>
    public static (string TsQuery, string Match) Query(IReadOnlyList<string> terms) =>
        (string.Join(" | ", terms), string.Join(" OR ", terms.Select(Phrase)));

    /// <summary>One term as an FTS5 MATCH of just that word (a quoted phrase: never read as syntax).</summary>
    public static string Phrase(string term) => $"\"{term}\"";

    [GeneratedRegex(@"[\p{L}\p{N}]+", RegexOptions.CultureInvariant)]
    private static partial Regex WordPattern();
}
