using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace AiChat.Api.Infrastructure;

/// <summary>Opaque, URL-safe keyset-pagination cursors: a position a client hands back, never parses.</summary>
public static class Cursor
{
    public static string Encode(string position) => WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(position));

    public static bool TryDecode(string cursor, out string position)
    {
        try
        {
            position = Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(cursor));
            return true;
        }
        catch (FormatException)
        {
            position = "";
            return false;
        }
    }
}
