using System.Text.RegularExpressions;
using AiChat.Api.Infrastructure;

namespace AiChat.Api.Users;

/// <summary>Rules for what an account may hold: email format, name length.</summary>
public static partial class AccountRules
{
    public const int MaxEmailLength = 254;
    public const int MaxNameLength = 100;

    public static void CheckEmail(FieldErrors errors, string? email)
    {
        if (string.IsNullOrWhiteSpace(email))
        {
            errors.Add("email", "The email is required.");
        }
        else if (email.Trim().Length > MaxEmailLength || !EmailPattern().IsMatch(email.Trim()))
        {
            errors.Add("email", "The email is not a valid address.");
        }
    }

    public static void CheckName(FieldErrors errors, string? name)
    {
        if (name is null)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(name))
        {
            errors.Add("name", "The name must not be blank; leave it out instead.");
        }
        else if (name.Trim().Length > MaxNameLength)
        {
            errors.Add("name", $"The name must have at most {MaxNameLength} characters.");
        }
        else if (name.Any(char.IsControl))
        {
            errors.Add("name", "The name must not contain control characters.");
        }
    }

    public static string? CleanName(string? name) => string.IsNullOrWhiteSpace(name) ? null : name.Trim();

    [GeneratedRegex(@"^[^@\s""<>()\[\]\\,;:]+@[^@\s""<>()\[\]\\,;:]+\.[^@\s""<>()\[\]\\,;:.]{2,}$", RegexOptions.CultureInvariant)]
    private static partial Regex EmailPattern();
}
