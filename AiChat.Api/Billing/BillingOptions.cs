namespace AiChat.Api.Billing;

public sealed class BillingOptions
{
    public const string Section = "Billing";

    /// <summary>The budget every new account is granted, in USD per period.</summary>
    public decimal DefaultBudgetUsd { get; set; } = 10m;

    /// <summary>The budget period: <c>1d, 1w, 1mo, 3mo, 6mo, 1y</c>.</summary>
    public string DefaultPeriod { get; set; } = "1mo";

    /// <summary>A reservation not settled within this time (its instance crashed) no longer counts.</summary>
    public TimeSpan ReservationTtl { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Prices per model in USD per million tokens; these override and extend the shipped table.</summary>
    public Dictionary<string, ModelPrice> Prices { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class ModelPrice
{
    public decimal InputPerMillionUsd { get; set; }

    public decimal OutputPerMillionUsd { get; set; }
}
