namespace AiChat.Api.Billing;

/// <summary>Budget periods, computed from the account's anchor at the moment of use: a period rolls over exactly at its boundary.</summary>
public static class BudgetPeriod
{
    public static readonly string[] All = ["1d", "1w", "1mo", "3mo", "6mo", "1y"];

    public static bool IsValid(string? period) => period is not null && All.Contains(period, StringComparer.Ordinal);

    /// <summary>The period containing <paramref name="now"/>: [start, end).</summary>
    public static (DateTimeOffset Start, DateTimeOffset End) Current(DateTimeOffset anchor, string period, DateTimeOffset now)
    {
        if (now < anchor)
        {
            return (anchor, Step(anchor, period, 1));
        }

        // Jump close with arithmetic, then walk: months have different lengths, so each step is computed from the anchor.
        var estimate = period switch
        {
            "1d" => (int)((now - anchor).TotalDays),
            "1w" => (int)((now - anchor).TotalDays / 7),
            "1mo" => Months(anchor, now),
            "3mo" => Months(anchor, now) / 3,
            "6mo" => Months(anchor, now) / 6,
            "1y" => Months(anchor, now) / 12,
            _ => throw new ArgumentOutOfRangeException(nameof(period), period, "Unknown budget period."),
        };
        var k = Math.Max(0, estimate - 1);
        while (Step(anchor, period, k + 1) <= now)
        {
            k++;
        }

        while (k > 0 && Step(anchor, period, k) > now)
        {
            k--;
        }

        return (Step(anchor, period, k), Step(anchor, period, k + 1));
    }

    private static DateTimeOffset Step(DateTimeOffset anchor, string period, int count) => period switch
    {
        "1d" => anchor.AddDays(count),
        "1w" => anchor.AddDays(7 * count),
        "1mo" => anchor.AddMonths(count),
        "3mo" => anchor.AddMonths(3 * count),
        "6mo" => anchor.AddMonths(6 * count),
        "1y" => anchor.AddYears(count),
        _ => throw new ArgumentOutOfRangeException(nameof(period), period, "Unknown budget period."),
    };

    private static int Months(DateTimeOffset from, DateTimeOffset to) => (to.Year - from.Year) * 12 + to.Month - from.Month;
}
