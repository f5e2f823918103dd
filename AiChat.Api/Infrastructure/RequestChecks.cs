namespace AiChat.Api.Infrastructure;

/// <summary>
/// What the API checks of every request before an endpoint sees it: no header value over <see cref="MaxHeaderChars"/>
/// (431), a declared body within <c>Api:MaxRequestBodyBytes</c> (413; Kestrel also stops an undeclared one at the
/// limit), and <see cref="TextRules"/> on the decoded path and every query name and value (400 <c>invalid_text</c>).
/// </summary>
public static class RequestChecks
{
    /// <summary>A bearer token is well under a kilobyte; Kestrel's own limit (32 KB for all headers) answers without a problem document.</summary>
    public const int MaxHeaderChars = 8 * 1024;

    public static IApplicationBuilder UseRequestChecks(this IApplicationBuilder app, long maxBodyBytes) => app.Use(async (context, next) =>
    {
        var request = context.Request;
        if (request.Headers.Any(header => header.Value.Any(value => value?.Length > MaxHeaderChars)))
        {
            await Problems.Of(StatusCodes.Status431RequestHeaderFieldsTooLarge, ProblemCodes.HeaderTooLarge,
                $"A request header has at most {MaxHeaderChars} characters.").ExecuteAsync(context);
            return;
        }

        if (request.ContentLength > maxBodyBytes)
        {
            await Problems.Of(StatusCodes.Status413PayloadTooLarge, ProblemCodes.PayloadTooLarge,
                "The request body is larger than this API accepts.").ExecuteAsync(context);
            return;
        }

        if (!TextRules.IsAllowed(request.Path.Value) || request.Query.Any(pair => !TextRules.IsAllowed(pair.Key) || pair.Value.Any(value => !TextRules.IsAllowed(value))))
        {
            await Problems.Of(StatusCodes.Status400BadRequest, ProblemCodes.InvalidText, TextRules.Detail).ExecuteAsync(context);
            return;
        }

        await next(context);
    });
}
