namespace AiChat.Gateway;

/// <summary>
/// <c>/internal/**</c> (the API's metering endpoint for Letta) is never forwarded, however the path is spelled: any case,
/// percent-encoded (once or more), with dot segments or doubled slashes.
/// </summary>
public static class InternalRoutes
{
    private const string Prefix = "internal";

    // Enough rounds to undo any encoding a client could stack on top of Kestrel's single decoding.
    private const int DecodingRounds = 4;

    public static IApplicationBuilder UseInternalRoutesBlocked(this IApplicationBuilder app) =>
        app.Use((context, next) => Names(context.Request.Path.Value)
            ? Results.Problem(statusCode: StatusCodes.Status404NotFound).ExecuteAsync(context)
            : next(context));

    /// <summary>True when the path, read the most generous way a server could read it, is <c>/internal</c> or below it.</summary>
    public static bool Names(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        var decoded = path;
        for (var round = 0; round < DecodingRounds && decoded.Contains('%'); round++)
        {
            decoded = Uri.UnescapeDataString(decoded);
        }

        var segments = new List<string>();
        foreach (var segment in decoded.Replace('\\', '/').Split('/'))
        {
            switch (segment)
            {
                case "" or ".":
                    break;
                case "..":
                    if (segments.Count > 0)
                    {
                        segments.RemoveAt(segments.Count - 1);
                    }

                    break;
                default:
                    segments.Add(segment);
                    break;
            }
        }

        return segments.Count > 0 && segments[0].Equals(Prefix, StringComparison.OrdinalIgnoreCase);
    }
}
