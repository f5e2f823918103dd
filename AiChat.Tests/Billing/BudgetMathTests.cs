using AiChat.Api.Billing;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Billing;

[Trait("Category", "Billing")]
public sealed class BudgetMathTests
{
    [Theory]
    [InlineData("1d", "2026-03-10T15:00:00Z", "2026-03-12T14:59:59Z", "2026-03-11T15:00:00Z", "2026-03-12T15:00:00Z")]
    [InlineData("1w", "2026-03-10T15:00:00Z", "2026-03-24T15:00:00Z", "2026-03-24T15:00:00Z", "2026-03-31T15:00:00Z")]
    [InlineData("1mo", "2026-01-31T00:00:00Z", "2026-02-27T23:59:59Z", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z")]
    [InlineData("1mo", "2026-01-31T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z")]
    [InlineData("3mo", "2026-01-15T00:00:00Z", "2026-11-24T00:00:00Z", "2026-10-15T00:00:00Z", "2027-01-15T00:00:00Z")]
    [InlineData("6mo", "2025-05-01T00:00:00Z", "2026-11-24T00:00:00Z", "2026-11-01T00:00:00Z", "2027-05-01T00:00:00Z")]
    [InlineData("1y", "2024-02-29T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z")]
    public void ThePeriodIsComputedFromTheAnchorAtUse(string period, string anchor, string now, string start, string end)
    {
        var (s, e) = BudgetPeriod.Current(DateTimeOffset.Parse(anchor), period, DateTimeOffset.Parse(now));

        Assert.Equal(DateTimeOffset.Parse(start), s);
        Assert.Equal(DateTimeOffset.Parse(end), e);
    }

    [Fact]
    public void APeriodRollsOverExactlyAtItsBoundary()
    {
        var anchor = DateTimeOffset.Parse("2026-01-01T09:30:00Z");
        var boundary = DateTimeOffset.Parse("2026-02-01T09:30:00Z");

        Assert.Equal(anchor, BudgetPeriod.Current(anchor, "1mo", boundary.AddTicks(-1)).Start);
        Assert.Equal(boundary, BudgetPeriod.Current(anchor, "1mo", boundary).Start);
    }

    [Fact]
    public void PricesComeFromTheTableConfigurationAndModelFamilies()
    {
        var prices = new PriceTable(Options.Create(new BillingOptions
        {
            Prices = new(StringComparer.OrdinalIgnoreCase) { ["my-local-model"] = new() { InputPerMillionUsd = 1m, OutputPerMillionUsd = 2m } },
        }));

        Assert.Equal(150 + 600, prices.CostNanos("gpt-4o-mini", 1, 1));
        Assert.Equal(150 + 600, prices.CostNanos("gpt-4o-mini-2024-07-18", 1, 1));
        Assert.Equal(150 + 600, prices.CostNanos("openai/gpt-4o-mini", 1, 1));
        Assert.Equal(2_500 + 10_000, prices.CostNanos("gpt-4o", 1, 1));
        Assert.Equal(1_000_000 * 1000L + 2_000_000 * 2000L, prices.CostNanos("my-local-model", 1_000_000, 2_000_000));
        Assert.Equal(0, prices.CostNanos("aichat-offline", 10_000, 10_000));
        Assert.Throws<ModelNotPricedException>(() => prices.CostNanos("mystery-model", 1, 1));
    }

    [Fact]
    public void AConfiguredPriceOverridesTheShippedOne()
    {
        var prices = new PriceTable(Options.Create(new BillingOptions
        {
            Prices = new(StringComparer.OrdinalIgnoreCase) { ["aichat-offline"] = new() { InputPerMillionUsd = 1000m, OutputPerMillionUsd = 1000m } },
        }));

        Assert.Equal(2_000_000, prices.CostNanos("aichat-offline", 1, 1));
    }

    [Fact]
    public void AmountsRoundUpToTheNextNanoDollar()
    {
        var prices = new PriceTable(Options.Create(new BillingOptions
        {
            Prices = new(StringComparer.OrdinalIgnoreCase) { ["odd"] = new() { InputPerMillionUsd = 0.0001m, OutputPerMillionUsd = 0m } },
        }));

        Assert.Equal(1, prices.CostNanos("odd", 1, 0));
    }
}

[Trait("Category", "Billing")]
public sealed class PriceTableTests
{
    private static PriceTable Prices(params (string Model, decimal Input, decimal Output)[] configured)
    {
        var billing = new BillingOptions();
        foreach (var (model, input, output) in configured)
        {
            billing.Prices[model] = new ModelPrice { InputPerMillionUsd = input, OutputPerMillionUsd = output };
        }

        return new PriceTable(Options.Create(billing));
    }

    [Fact]
    public void ADatedSnapshotCostsWhatItsFamilyCosts()
    {
        Assert.Equal((0.15m, 0.60m), Prices().PriceOf("gpt-4o-mini-2024-07-18"));
        Assert.Equal((2.50m, 10.00m), Prices().PriceOf("openai/gpt-4o-2024-08-06"));
    }

    [Fact]
    public void AConfiguredFamilyPricesItsDatedSnapshotsToo()
    {
        var prices = Prices(("gpt-4o-mini", 1m, 2m), ("house-model", 3m, 4m));

        Assert.Equal((1m, 2m), prices.PriceOf("gpt-4o-mini-2024-07-18"));
        Assert.Equal((3m, 4m), prices.PriceOf("house-model-2026-01-01"));
        Assert.Equal((2.50m, 10.00m), prices.PriceOf("gpt-4o-2024-08-06"));
    }

    [Fact]
    public void AModelOfNoKnownFamilyIsNotPriced() =>
        Assert.Throws<ModelNotPricedException>(() => Prices(("house-model", 3m, 4m)).PriceOf("house-2026"));
}
