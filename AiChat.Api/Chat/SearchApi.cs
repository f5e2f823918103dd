using System.Globalization;
using System.IO.Hashing;
using System.Text;
using AiChat.Api.Data;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Chat;

/// <summary>
/// Search over the user's messages in all of their conversations (FTS5 on SQLite, tsvector on Postgres), best first and
/// keyset-paged. A query is words: quotes and operators are never syntax, only the letters and digits around them are searched.
/// </summary>
public static class SearchApi
{
    public const int MaxQueryChars = 500;
    public const int DefaultLimit = 20;
    public const int MaxLimit = 50;

    public static IEndpointRouteBuilder MapSearchApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/search").WithTags("Search").RequireAuthorization();

        group.MapGet("", SearchAsync);

        return app;
    }

    /// <summary>
    /// The user's current messages that have any of the query's words, those with more of them first, then those where
    /// they occur more often, then the newest; answers a regenerate replaced are left out. Each hit has its conversation,
    /// and an HTML excerpt (the text escaped, matches in <c>&lt;mark&gt;</c>). <c>before</c> is the <c>next_cursor</c> of
    /// the page before, for the same query; a message's place depends only on it and the query, so pages never overlap or skip.
    /// </summary>
    public static async Task<Results<Ok<SearchPage>, ProblemHttpResult>> SearchAsync(
        HttpContext context, MessageStore messages, string? query, int? limit, string? before, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        if (string.IsNullOrWhiteSpace(query) || query.Length > MaxQueryChars)
        {
            errors.Add("query", $"The query has 1 to {MaxQueryChars} characters, not all of them blank.");
        }

        var size = limit ?? DefaultLimit;
        if (size is < 1 or > MaxLimit)
        {
            errors.Add("limit", $"The limit must be between 1 and {MaxLimit}.");
        }

        var terms = FullText.Terms(query);
        var after = SearchPosition.Start;
        if (before is not null)
        {
            if (DecodeCursor(before, terms) is { } position)
            {
                after = position;
            }
            else
            {
                errors.Add("before", "The cursor is not one this API returned for this query.");
            }
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var page = await messages.SearchPageAsync(context.User.UserId(), terms, after, size + 1, cancellationToken);
        var hits = page.Take(size).Select(SearchHitDto.From).ToList();
        return TypedResults.Ok(new SearchPage(hits, page.Count > size ? EncodeCursor(page[size - 1].Position, terms) : null));
    }

    // The cursor names its query, so one handed to another query is refused rather than read as a place in a different order.
    private static string EncodeCursor(SearchPosition position, IReadOnlyList<string> terms) =>
        Cursor.Encode(string.Create(CultureInfo.InvariantCulture, $"s:{position.Words}:{position.Occurrences}:{position.Seq}:{Fingerprint(terms)}"));

    private static SearchPosition? DecodeCursor(string cursor, IReadOnlyList<string> terms)
    {
        if (!Cursor.TryDecode(cursor, out var position) || position.Split(':') is not ["s", var words, var occurrences, var seq, var fingerprint]
            || !long.TryParse(words, NumberStyles.None, CultureInfo.InvariantCulture, out var wordCount)
            || !long.TryParse(occurrences, NumberStyles.None, CultureInfo.InvariantCulture, out var occurrenceCount)
            || !long.TryParse(seq, NumberStyles.None, CultureInfo.InvariantCulture, out var lastSeq)
            || fingerprint != Fingerprint(terms))
        {
            return null;
        }

        return new SearchPosition(wordCount, occurrenceCount, lastSeq);
    }

    private static string Fingerprint(IReadOnlyList<string> terms) =>
        XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(string.Join(' ', terms))).ToString("x16", CultureInfo.InvariantCulture);
}

/// <summary>A message a search found: its conversation, and an HTML excerpt with the matches in <c>&lt;mark&gt;</c>.</summary>
public sealed record SearchHitDto(Guid ConversationId, string? ConversationTitle, Guid MessageId, string Role, string Snippet, DateTimeOffset CreatedAt)
{
    public static SearchHitDto From(SearchHitRecord hit) =>
        new(hit.ConversationId, hit.ConversationTitle, hit.Id, hit.Role, SearchSnippet.ToHtml(hit.Snippet), hit.CreatedAt);
}

public sealed record SearchPage(IReadOnlyList<SearchHitDto> Hits, string? NextCursor);
