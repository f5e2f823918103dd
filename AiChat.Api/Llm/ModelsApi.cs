using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Llm;

public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/api/v1/models").WithTags("Models").RequireAuthorization();
        models.MapGet("", ListModels);

        return app;
    }

    /// <summary>
    /// The catalogue, default first: what a conversation may name as its model, and what each costs. <c>offline</c> says
    /// the offline model answers for all of them (no endpoint is configured), so a client can say so.
    /// </summary>
    public static Ok<ModelListDto> ListModels(ModelCatalog catalog, IOptions<LlmOptions> options) =>
        TypedResults.Ok(new ModelListDto(catalog.Models.Select(ModelDto.From).ToList(), options.Value.UsesOfflineModel));
}

public sealed record ModelListDto(IReadOnlyList<ModelDto> Models, bool Offline);

public sealed record ModelDto(string Id, string Name, int ContextWindow, int MaxOutputTokens, decimal? InputPerMillionUsd, decimal? OutputPerMillionUsd, bool Default)
{
    public static ModelDto From(CatalogModel model) => new(
        model.Id, model.Name, model.ContextWindow, model.MaxOutputTokens, model.InputPerMillionUsd, model.OutputPerMillionUsd, model.IsDefault);
}
