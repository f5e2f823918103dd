using AiChat.Api.Billing;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Llm;

/// <summary>One entry of <c>Llm:Models</c> as configured.</summary>
public sealed class LlmModelOptions
{
    public string Id { get; set; } = "";

    /// <summary>What a client shows; the id when not given.</summary>
    public string? Name { get; set; }

    public int ContextWindow { get; set; }

    /// <summary>The output bound of every call on the model (and what is reserved for it); less than the window.</summary>
    public int MaxOutputTokens { get; set; }

    /// <summary>USD per million input tokens; with <see cref="OutputPerMillionUsd"/>, or neither (then the price table's price).</summary>
    public decimal? InputPerMillionUsd { get; set; }

    public decimal? OutputPerMillionUsd { get; set; }

    /// <summary>Exactly one entry is the default: the model of a conversation that names none.</summary>
    public bool Default { get; set; }
}

/// <summary>A model a conversation may use: its window, its output bound, and the price the ledger charges for it.</summary>
public sealed record CatalogModel(string Id, string Name, int ContextWindow, int MaxOutputTokens, decimal? InputPerMillionUsd, decimal? OutputPerMillionUsd, bool IsDefault);

/// <summary>
/// The models AiChat offers (<c>Llm:Models</c>), default first. With none configured it is the one model of
/// <c>Llm:Model</c> (the offline model when no <c>Llm:Endpoint</c> is set), as before there was a catalogue. Ids are
/// matched case-sensitively (they are sent upstream as they are) and must differ by more than case (a price is looked
/// up regardless of case).
/// </summary>
public sealed class ModelCatalog
{
    /// <summary>Reading the options validates them (<see cref="ModelCatalogValidation"/>), so an invalid catalogue never gets this far.</summary>
    public ModelCatalog(IOptions<LlmOptions> options, PriceTable prices)
    {
        Models = Build(options.Value, prices);
        Default = Models[0];
    }

    /// <summary>Every model, the default first, then in configuration order.</summary>
    public IReadOnlyList<CatalogModel> Models { get; }

    public CatalogModel Default { get; }

    public CatalogModel? Find(string id) => Models.FirstOrDefault(model => string.Equals(model.Id, id, StringComparison.Ordinal));

    /// <summary>The model a call uses: the one named when it is listed, else the default (none named, or one no longer listed).</summary>
    public CatalogModel Resolve(string? id) => id is not null && Find(id) is { } listed ? listed : Default;

    /// <summary>Null when <paramref name="id"/> is in the catalogue (or not given: the default); else the 422 <c>unknown_model</c> problem.</summary>
    public ProblemHttpResult? Check(string? id) => id is null || Find(id) is not null ? null : UnknownModel(id);

    public ProblemHttpResult UnknownModel(string id) => Problems.Of(
        StatusCodes.Status422UnprocessableEntity,
        LlmErrors.UnknownModel,
        $"The model '{id}' is not in the catalogue (GET /api/v1/models lists it).",
        new Dictionary<string, object?> { ["model"] = id, ["models"] = Models.Select(model => model.Id).ToArray() });

    /// <summary>Why a configured catalogue cannot be used; empty when it can. Only <c>Llm:Models</c> is checked: the one-model fallback behaves as it always did.</summary>
    public static IReadOnlyList<string> Validate(LlmOptions options, PriceTable prices)
    {
        var problems = new List<string>();
        if (options.Models.Count == 0)
        {
            return problems;
        }

        var defaults = options.Models.Count(model => model.Default);
        if (defaults != 1)
        {
            problems.Add($"{LlmOptions.Section}:Models must mark exactly one model as Default; {defaults} are.");
        }

        foreach (var (model, index) in options.Models.Select((model, index) => (model, index)))
        {
            var key = $"{LlmOptions.Section}:Models:{index}";
            if (string.IsNullOrWhiteSpace(model.Id))
            {
                problems.Add($"{key}:Id is required.");
                continue;
            }

            if (options.Models.Take(index).Any(earlier => string.Equals(earlier.Id, model.Id, StringComparison.OrdinalIgnoreCase)))
            {
                problems.Add($"{key}: the id '{model.Id}' is listed twice.");
            }

            var (window, output) = (model.ContextWindow, model.MaxOutputTokens);
            if (window <= 0 || output <= 0)
            {
                problems.Add($"{key} ('{model.Id}'): the context window ({window}) and max output tokens ({output}) must be positive.");
            }
            else if (output >= window)
            {
                problems.Add($"{key} ('{model.Id}'): max output tokens ({output}) must be less than the context window ({window}).");
            }

            if (model.InputPerMillionUsd is null != model.OutputPerMillionUsd is null)
            {
                problems.Add($"{key} ('{model.Id}'): give both InputPerMillionUsd and OutputPerMillionUsd, or neither.");
            }
            else if (model.InputPerMillionUsd < 0 || model.OutputPerMillionUsd < 0)
            {
                problems.Add($"{key} ('{model.Id}'): prices must not be negative.");
            }
            else if (model.InputPerMillionUsd is null && PriceOf(prices, model.Id) is null)
            {
                problems.Add($"{key} ('{model.Id}') has no price: give InputPerMillionUsd and OutputPerMillionUsd, or Billing:Prices:{model.Id}.");
            }
        }

        return problems;
    }

    private static List<CatalogModel> Build(LlmOptions options, PriceTable prices)
    {
        if (options.Models.Count == 0)
        {
            var id = options.EffectiveModel;
            var price = PriceOf(prices, id);
            return [new CatalogModel(id, id, options.ContextWindow, options.MaxOutputTokens, price?.Input, price?.Output, IsDefault: true)];
        }

        return options.Models
            .OrderByDescending(model => model.Default)
            .Select(model =>
            {
                // The entry's own price was given to the ledger (LlmExtensions), so the table answers with it either way.
                var price = PriceOf(prices, model.Id)!.Value;
                return new CatalogModel(model.Id, string.IsNullOrWhiteSpace(model.Name) ? model.Id : model.Name, model.ContextWindow,
                    model.MaxOutputTokens, price.Input, price.Output, model.Default);
            })
            .ToList();
    }

    private static (decimal Input, decimal Output)? PriceOf(PriceTable prices, string id)
    {
        try
        {
            return prices.PriceOf(id);
        }
        catch (ModelNotPricedException)
        {
            return null;
        }
    }

    /// <summary>The entries' own prices, for <see cref="BillingOptions.Prices"/>: what the ledger charges for a catalogue model.</summary>
    internal static IEnumerable<(string Id, ModelPrice Price)> ConfiguredPrices(IEnumerable<LlmModelOptions> models) =>
        models.Where(model => !string.IsNullOrWhiteSpace(model.Id) && model.InputPerMillionUsd is not null && model.OutputPerMillionUsd is not null)
            .Select(model => (model.Id, new ModelPrice { InputPerMillionUsd = model.InputPerMillionUsd!.Value, OutputPerMillionUsd = model.OutputPerMillionUsd!.Value }));
}

/// <summary>Checks <c>Llm:Models</c> when the options are first read, which <c>ValidateOnStart</c> makes the start of the API.</summary>
public sealed class ModelCatalogValidation(PriceTable prices) : IValidateOptions<LlmOptions>
{
    public ValidateOptionsResult Validate(string? name, LlmOptions options) =>
        ModelCatalog.Validate(options, prices) is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
