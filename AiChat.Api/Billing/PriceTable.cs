using Microsoft.Extensions.Options;

namespace AiChat.Api.Billing;

/// <summary>The model is not in the price table: the call is refused rather than billed at $0.</summary>
public sealed class ModelNotPricedException(string model) : Exception($"The model '{model}' has no price; it cannot be used until one is configured.")
{
    public string Model { get; } = model;
}

/// <summary>
/// USD prices per model, shipped below and overridable under <c>Billing:Prices</c>. Amounts are computed in integer
/// nano-USD (1e-9), rounded up, so the ledger never loses a fraction of a cent to floating point.
/// </summary>
public sealed class PriceTable(IOptions<BillingOptions> options)
{
    // USD per million tokens (input, output), as published by the providers.
    private static readonly Dictionary<string, (decimal Input, decimal Output)> Shipped = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt-4o-mini"] = (0.15m, 0.60m),
        ["gpt-4o"] = (2.50m, 10.00m),
        ["gpt-4.1-mini"] = (0.40m, 1.60m),
        ["gpt-4.1-nano"] = (0.10m, 0.40m),
        ["gpt-4.1"] = (2.00m, 8.00m),
        ["text-embedding-3-small"] = (0.02m, 0m),
        ["aichat-offline"] = (0m, 0m),
        ["aichat-offline-embedding"] = (0m, 0m),
    };

    public (decimal InputPerMillion, decimal OutputPerMillion) PriceOf(string model)
    {
        var name = model.Contains('/') ? model[(model.LastIndexOf('/') + 1)..] : model;
        if (options.Value.Prices.TryGetValue(model, out var configured) || options.Value.Prices.TryGetValue(name, out configured))
        {
            return (configured.InputPerMillionUsd, configured.OutputPerMillionUsd);
        }

        if (Shipped.TryGetValue(name, out var shipped))
        {
            return shipped;
        }

        // Dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs; the longest matching family wins,
        // and a configured family wins over a shipped one of the same name.
        var families = options.Value.Prices.Keys.Concat(Shipped.Keys)
            .Where(family => name.StartsWith(family + "-", StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(family => family.Length)
            .ToList();
        if (families.Count == 0)
        {
            throw new ModelNotPricedException(model);
        }

        return options.Value.Prices.TryGetValue(families[0], out var family) ? (family.InputPerMillionUsd, family.OutputPerMillionUsd) : Shipped[families[0]];
    }

    public long CostNanos(string model, long inputTokens, long outputTokens)
    {
        var (input, output) = PriceOf(model);
        return (long)Math.Ceiling((inputTokens * input + outputTokens * output) * 1000m);
    }

    public static long ToNanos(decimal usd) => (long)Math.Ceiling(usd * 1_000_000_000m);

    public static decimal ToUsd(long nanos) => nanos / 1_000_000_000m;
}
