using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Billing;

public static class BudgetApi
{
    public static IEndpointRouteBuilder MapBudgetApi(this IEndpointRouteBuilder app)
    {
        var user = app.MapGroup("/api/v1/user").WithTags("Billing").RequireAuthorization();
        user.MapGet("/budget", GetBudgetAsync);
        user.MapPost("/budget", SetPersonalLimitAsync);
        user.MapGet("/usage", GetUsageAsync);

        var admin = app.MapGroup("/api/v1/admin").WithTags("Admin").RequireAuthorization(ApiUser.AdminPolicy);
        admin.MapPut("/users/{id:guid}/budget", GrantBudgetAsync);
        admin.MapGet("/users/{id:guid}/budget", GetUserBudgetAsync);

        return app;
    }

    public static async Task<Results<Ok<BudgetDto>, ProblemHttpResult>> GetBudgetAsync(HttpContext context, Ledger ledger, CancellationToken cancellationToken) =>
        await ledger.GetStateAsync(context.User.UserId(), cancellationToken) is { } state
            ? TypedResults.Ok(BudgetDto.From(state))
            : Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "The account has no budget.");

    /// <summary>A user may lower their own spending below the grant (or lift that limit back up to it); raising the grant is an admin's.</summary>
    public static async Task<Results<Ok<BudgetDto>, ProblemHttpResult>> SetPersonalLimitAsync(
        PersonalLimitRequest request, HttpContext context, Ledger ledger, IEnumerable<IBudgetSync> syncs, CancellationToken cancellationToken)
    {
        var userId = context.User.UserId();
        if (request.PersonalLimitUsd is < 0)
        {
            return new FieldErrors().Add("personal_limit_usd", "The limit must not be negative.").ToProblem();
        }

        var state = await ledger.GetStateAsync(userId, cancellationToken);
        if (state is null)
        {
            return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "The account has no budget.");
        }

        // Compared in USD first: a limit of 1e20 USD has no nano-USD value to compare.
        if (request.PersonalLimitUsd > PriceTable.ToUsd(state.MaxBudget))
        {
            return Problems.Of(StatusCodes.Status403Forbidden, BillingProblems.LimitAboveGrant,
                $"A personal limit can be at most the granted budget ({PriceTable.ToUsd(state.MaxBudget)} USD); raising the grant is an admin action.",
                new Dictionary<string, object?> { ["max_budget_usd"] = PriceTable.ToUsd(state.MaxBudget) });
        }

        long? limit = request.PersonalLimitUsd is { } usd ? PriceTable.ToNanos(usd) : null;
        await ledger.SetPersonalLimitAsync(userId, limit, cancellationToken);
        var updated = (await ledger.GetStateAsync(userId, cancellationToken))!;
        foreach (var sync in syncs)
        {
            await sync.BudgetChangedAsync(userId, updated, cancellationToken);
        }

        return TypedResults.Ok(BudgetDto.From(updated));
    }

    public static async Task<Results<Ok<UsageReport>, ProblemHttpResult>> GetUsageAsync(
        HttpContext context, Ledger ledger, TimeProvider time, DateTimeOffset? from, DateTimeOffset? to, string? group_by, CancellationToken cancellationToken)
    {
        var groupBy = group_by ?? "day";
        var end = to ?? time.GetUtcNow();
        var start = from ?? end.AddDays(-30);
        var errors = new FieldErrors();
        if (groupBy is not ("day" or "model"))
        {
            errors.Add("group_by", "Group by day or model.");
        }

        if (start >= end)
        {
            errors.Add("from", "from must be before to.");
        }
        else if (end - start > TimeSpan.FromDays(366 * 2))
        {
            errors.Add("from", "A report spans at most two years.");
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var rows = await ledger.UsageAsync(context.User.UserId(), start, end, groupBy == "model" ? UsageGrouping.Model : UsageGrouping.Day, cancellationToken);
        var series = rows.Select(r => new UsagePoint(r.Key, PriceTable.ToUsd(r.CostNanos), r.PromptTokens, r.CompletionTokens, r.Calls)).ToList();
        return TypedResults.Ok(new UsageReport(start, end, groupBy,
            new UsageTotals(series.Sum(p => p.CostUsd), series.Sum(p => p.PromptTokens), series.Sum(p => p.CompletionTokens), series.Sum(p => p.Calls)), series));
    }

    public static async Task<Results<Ok<BudgetDto>, ProblemHttpResult>> GrantBudgetAsync(
        Guid id, GrantRequest request, Ledger ledger, IEnumerable<IBudgetSync> syncs, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        if (request.MaxBudgetUsd is not { } usd || usd < 0 || usd > 1_000_000)
        {
            errors.Add("max_budget_usd", "The budget is between 0 and 1,000,000 USD.");
        }

        if (request.Duration is not null && !BudgetPeriod.IsValid(request.Duration))
        {
            errors.Add("duration", $"The period is one of {string.Join(", ", BudgetPeriod.All)}.");
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        if (!await ledger.SetGrantAsync(id, PriceTable.ToNanos(request.MaxBudgetUsd!.Value), request.Duration, cancellationToken))
        {
            return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such account.");
        }

        var state = (await ledger.GetStateAsync(id, cancellationToken))!;
        foreach (var sync in syncs)
        {
            await sync.BudgetChangedAsync(id, state, cancellationToken);
        }

        return TypedResults.Ok(BudgetDto.From(state));
    }

    public static async Task<Results<Ok<BudgetDto>, ProblemHttpResult>> GetUserBudgetAsync(Guid id, Ledger ledger, CancellationToken cancellationToken) =>
        await ledger.GetStateAsync(id, cancellationToken) is { } state
            ? TypedResults.Ok(BudgetDto.From(state))
            : Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such account.");
}

/// <summary>Something that mirrors the budget elsewhere (LiteLLM's user budget) and must hear of a change.</summary>
public interface IBudgetSync
{
    Task BudgetChangedAsync(Guid userId, BudgetState state, CancellationToken cancellationToken);
}

public sealed record BudgetDto(
    decimal MaxBudgetUsd, decimal? PersonalLimitUsd, decimal EffectiveLimitUsd, decimal SpentUsd, decimal ReservedUsd, decimal RemainingUsd,
    string Duration, DateTimeOffset PeriodStart, DateTimeOffset ResetsAt)
{
    public static BudgetDto From(BudgetState state) => new(
        PriceTable.ToUsd(state.MaxBudget),
        state.PersonalLimit is { } limit ? PriceTable.ToUsd(limit) : null,
        PriceTable.ToUsd(state.EffectiveLimit),
        PriceTable.ToUsd(state.Spent),
        PriceTable.ToUsd(state.Reserved),
        PriceTable.ToUsd(state.Remaining),
        state.Duration,
        state.PeriodStart,
        state.ResetsAt);
}

public sealed record PersonalLimitRequest(decimal? PersonalLimitUsd);

public sealed record GrantRequest(decimal? MaxBudgetUsd, string? Duration);

public sealed record UsagePoint(string Key, decimal CostUsd, long PromptTokens, long CompletionTokens, long Calls);

public sealed record UsageTotals(decimal CostUsd, long PromptTokens, long CompletionTokens, long Calls);

public sealed record UsageReport(DateTimeOffset From, DateTimeOffset To, string GroupBy, UsageTotals Totals, IReadOnlyList<UsagePoint> Series);
