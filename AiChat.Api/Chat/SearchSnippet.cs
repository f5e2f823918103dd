using System.Text;
using System.Text.Encodings.Web;
using System.Text.Unicode;

namespace AiChat.Api.Chat;

/// <summary>
/// Search excerpts. Both stores mark each match between two control characters, never markup (SQLite's
/// <c>snippet()</c>, Postgres' <c>ts_headline</c>), with '…' where the message was cut; the API turns that into HTML a
/// web client can show as it is: the message's text escaped, with only balanced <c>&lt;mark&gt;</c> tags added.
/// </summary>
public static class SearchSnippet
{
    public const char MarkStart = '\u0002';
    public const char MarkEnd = '\u0003';
    public const string Ellipsis = "…";

    /// <summary>
    /// What Postgres translates a message from, for <c>ts_headline</c> (which drops whatever its parser reads as a tag):
    /// the control characters the marks use become spaces, '&lt;' and '&gt;' become <see cref="LessThan"/> and <see cref="GreaterThan"/>.
    /// </summary>
    internal const string HeadlineFrom = "\u0001\u0002\u0003\u0004<>";

    /// <summary>What <see cref="HeadlineFrom"/> translates to, character by character.</summary>
    internal const string HeadlineTo = "    \u0001\u0004";

    private const char LessThan = '\u0001';
    private const char GreaterThan = '\u0004';

    private static readonly HtmlEncoder Encoder = HtmlEncoder.Create(UnicodeRanges.All);

    /// <summary>
    /// A <c>ts_headline</c> of the translated message as <c>snippet()</c> gives it: '&lt;' and '&gt;' back, and '…' on a
    /// side where the excerpt does not reach the message's end (ts_headline picks one stretch without saying where it was
    /// cut); punctuation it left off an end of the message with no word beyond is put back.
    /// </summary>
    public static string FromHeadline(string headline, string content)
    {
        var excerpt = headline.Replace(LessThan, '<').Replace(GreaterThan, '>').Trim();
        var plain = excerpt.Replace(MarkStart.ToString(), "", StringComparison.Ordinal).Replace(MarkEnd.ToString(), "", StringComparison.Ordinal);
        var source = content.Replace('\u0001', ' ').Replace(MarkStart, ' ').Replace(MarkEnd, ' ').Replace('\u0004', ' ');
        var at = plain.Length == 0 ? -1 : source.IndexOf(plain, StringComparison.Ordinal);
        if (at < 0)
        {
            return excerpt;
        }

        var before = source[..at];
        var after = source[(at + plain.Length)..];
        return (HasWord(before) ? Ellipsis : before.TrimStart()) + excerpt + (HasWord(after) ? Ellipsis : after.TrimEnd());
    }

    /// <summary>
    /// The marked excerpt as HTML: every character of the message escaped, each mark a <c>&lt;mark&gt;</c> tag. A stray
    /// mark (a control character the user typed) never unbalances the tags: a second opening or an unopened closing is dropped.
    /// </summary>
    public static string ToHtml(string marked)
    {
        var html = new StringBuilder(marked.Length + 32);
        var open = false;
        var from = 0;
        for (var i = 0; i < marked.Length; i++)
        {
            if (marked[i] is not (MarkStart or MarkEnd))
            {
                continue;
            }

            html.Append(Encoder.Encode(marked[from..i]));
            from = i + 1;
            if (marked[i] == MarkStart && !open)
            {
                html.Append("<mark>");
                open = true;
            }
            else if (marked[i] == MarkEnd && open)
            {
                html.Append("</mark>");
                open = false;
            }
        }

        html.Append(Encoder.Encode(marked[from..]));
        return open ? html.Append("</mark>").ToString() : html.ToString();
    }

    private static bool HasWord(string text) => text.Any(char.IsLetterOrDigit);
}
