namespace AiChat.Tests.Infrastructure;

/// <summary>
/// A test whose prerequisite (Postgres, a browser) is missing is skipped on a developer's machine
/// with the reason, and fails in CI (<c>CI=true</c>): CI never passes by skipping.
/// </summary>
public static class Prerequisite
{
    public static bool InCi =>
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        || Environment.GetEnvironmentVariable("CI") == "1";

    public static void Missing(string what)
    {
        if (InCi)
        {
            Assert.Fail($"Prerequisite missing in CI: {what}");
        }

        Assert.Skip($"Prerequisite missing: {what}");
    }
}
