using AiChat.Api.Billing;
using AiChat.Api.Llm;

namespace AiChat.Tests.Llm;

/// <summary>The model catalogue's rules, without a server: what a configuration must say, and how a model is found.</summary>
[Trait("Category", "Llm")]
public sealed class ModelCatalogTests
{
    [Fact]
    public void AValidCatalogueHasNoProblems()
    {
        Assert.Empty(Problems(House(isDefault: true), Model("gpt-4o-mini")));
    }

    [Fact]
    public void NothingConfiguredHasNoProblemsEvenForAnUnpricedModel()
    {
        // Without Llm:Models the single model behaves as before: an unpriced one is refused per call (model_not_priced).
        Assert.Empty(ModelCatalog.Validate(new LlmOptions { Model = "mystery-model-9000", Endpoint = new Uri("http://localhost/v1") }, Prices()));
    }

    [Fact]
    public void ADuplicateIdIsRefusedEvenWhenOnlyItsCaseDiffers()
    {
        Assert.Equal(
            ["Llm:Models:1: the id 'house-model' is listed twice.", "Llm:Models:2: the id 'House-Model' is listed twice."],
            Problems(House(isDefault: true), House(), House(id: "House-Model")));
    }

    [Fact]
    public void ACatalogueWithoutADefaultIsRefused()
    {
        Assert.Equal(["Llm:Models must mark exactly one model as Default; 0 are."], Problems(House(), Model("gpt-4o-mini")));
    }

    [Fact]
    public void ACatalogueWithTwoDefaultsIsRefused()
    {
        Assert.Equal(["Llm:Models must mark exactly one model as Default; 2 are."], Problems(House(isDefault: true), Model("gpt-4o-mini", isDefault: true)));
    }

    [Fact]
    public void AModelWithoutAPriceInTheEntryOrThePriceTableIsRefused()
    {
        Assert.Equal(
            ["Llm:Models:1 ('mystery-model-9000') has no price: give InputPerMillionUsd and OutputPerMillionUsd, or Billing:Prices:mystery-model-9000."],
            Problems(House(isDefault: true), Model("mystery-model-9000")));
    }

    [Fact]
    public void AModelPricedOnlyInBillingPricesIsAccepted()
    {
        var prices = Prices(("mystery-model-9000", 1m, 2m));

        Assert.Empty(ModelCatalog.Validate(Options(House(isDefault: true), Model("mystery-model-9000")), prices));
    }

    [Fact]
    public void HalfAPriceIsRefused()
    {
        var entry = House(isDefault: true);
        entry.OutputPerMillionUsd = null;

        Assert.Equal(["Llm:Models:0 ('house-model'): give both InputPerMillionUsd and OutputPerMillionUsd, or neither."], Problems(entry));
    }

    [Theory]
    [InlineData(8000, 8000, "Llm:Models:0 ('house-model'): max output tokens (8000) must be less than the context window (8000).")]
    [InlineData(8000, 9000, "Llm:Models:0 ('house-model'): max output tokens (9000) must be less than the context window (8000).")]
    [InlineData(0, 100, "Llm:Models:0 ('house-model'): the context window (0) and max output tokens (100) must be positive.")]
    [InlineData(8000, 0, "Llm:Models:0 ('house-model'): the context window (8000) and max output tokens (0) must be positive.")]
    public void AnOutputBoundThatDoesNotFitTheWindowIsRefused(int window, int maxOutput, string problem)
    {
        Assert.Equal([problem], Problems(House(isDefault: true, window: window, maxOutput: maxOutput)));
    }

    [Fact]
    public void AModelIsFoundByItsExactIdAndAnUnknownOneIsA422()
    {
        var catalog = new ModelCatalog(Microsoft.Extensions.Options.Options.Create(Options(Model("gpt-4o-mini"), House(isDefault: true))), Prices(("house-model", 1.25m, 5m)));

        Assert.Equal(["house-model", "gpt-4o-mini"], catalog.Models.Select(m => m.Id));
        Assert.Equal("house-model", catalog.Default.Id);
        Assert.Equal(0.15m, catalog.Find("gpt-4o-mini")?.InputPerMillionUsd);
        Assert.Null(catalog.Find("GPT-4o-mini"));
        Assert.Null(catalog.Check(null));
        Assert.Null(catalog.Check("gpt-4o-mini"));
        var problem = Assert.IsType<Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult>(catalog.Check("gpt-5"));
        Assert.Equal(422, problem.StatusCode);
        Assert.Equal("unknown_model", problem.ProblemDetails.Extensions["code"]);
        Assert.Equal(new[] { "house-model", "gpt-4o-mini" }, problem.ProblemDetails.Extensions["models"]);
    }

    private static IReadOnlyList<string> Problems(params LlmModelOptions[] models) => ModelCatalog.Validate(Options(models), Prices());

    private static LlmOptions Options(params LlmModelOptions[] models) => new() { Models = [.. models] };

    private static PriceTable Prices(params (string Model, decimal Input, decimal Output)[] configured)
    {
        var billing = new BillingOptions();
        foreach (var (model, input, output) in configured)
        {
            billing.Prices[model] = new ModelPrice { InputPerMillionUsd = input, OutputPerMillionUsd = output };
        }

        return new PriceTable(Microsoft.Extensions.Options.Options.Create(billing));
    }

    private static LlmModelOptions House(string id = "house-model", bool isDefault = false, int window = 32_000, int maxOutput = 2_000) => new()
    {
        Id = id,
        Name = "House model",
        ContextWindow = window,
        MaxOutputTokens = maxOutput,
        InputPerMillionUsd = 1.25m,
        OutputPerMillionUsd = 5m,
        Default = isDefault,
    };

    private static LlmModelOptions Model(string id, bool isDefault = false) => new()
    {
        Id = id,
        ContextWindow = 128_000,
        MaxOutputTokens = 16_384,
        Default = isDefault,
    };
}
