using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace AiChat.Api.Infrastructure;

/// <summary>
/// The one rule for text entering the API, in a JSON body, a query string or a path: no NUL and no other C0 control
/// character except tab, line feed and carriage return. Postgres cannot store NUL and no client means to send the
/// others, so such text is refused (400 <c>invalid_text</c>) instead of stored. (An unpaired surrogate in a body never
/// gets this far: the JSON reader refuses it as <c>malformed_json</c>.)
/// </summary>
public static class TextRules
{
    private static readonly SearchValues<char> Forbidden = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000B\u000C\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F");

    public const string Detail = "Text must not contain NUL or other control characters (tab, line feed and carriage return are allowed).";

    public static bool IsAllowed(ReadOnlySpan<char> text) => text.IndexOfAny(Forbidden) < 0;
}

/// <summary>A JSON string that breaks <see cref="TextRules"/>; the serializer adds the path of the field.</summary>
public sealed class InvalidTextException() : JsonException(TextRules.Detail);

/// <summary>Reads every string of a request body through <see cref="TextRules"/>: the rule holds for every field at once.</summary>
public sealed class CheckedStringConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"Expected a string, found {reader.TokenType}.");
        }

        var text = reader.GetString()!;
        return TextRules.IsAllowed(text) ? text : throw new InvalidTextException();
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
