using AiChat.Api.Billing;

namespace AiChat.Api.Users;

/// <summary>The account's billing account with the default grant; its health is the budget's state, its export the budget and daily usage.</summary>
public sealed class BillingAccount(Ledger ledger, TimeProvider time) : IAccountComponent
{
    public string Name => "billing";

    public int Order => AccountOrder.Billing;

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) => ledger.EnsureAccountAsync(account.UserId, cancellationToken);

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => ledger.DeleteAccountAsync(userId, cancellationToken);

    public async Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) =>
        await ledger.GetStateAsync(userId, cancellationToken) switch
        {
            null => AccountCheck.Missing("The account has no billing account."),
            { Remaining: 0 } => new(true, "exhausted", "The budget for this period is used up."),
            _ => AccountCheck.Fine,
        };

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var state = await ledger.GetStateAsync(userId, cancellationToken);
        var usage = await ledger.UsageAsync(userId, DateTimeOffset.UnixEpoch, time.GetUtcNow().AddDays(1), UsageGrouping.Day, cancellationToken);
        return new ExportSection(new
        {
            budget = state is null ? null : BudgetDto.From(state),
            usage_by_day = usage.Select(r => new UsagePoint(r.Key, PriceTable.ToUsd(r.CostNanos), r.PromptTokens, r.CompletionTokens, r.Calls)),
        });
    }
}
