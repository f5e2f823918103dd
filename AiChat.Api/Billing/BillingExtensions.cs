using AiChat.Api.Auth;
using AiChat.Api.Users;
using Microsoft.AspNetCore.DataProtection;

namespace AiChat.Api.Billing;

public static class BillingExtensions
{
    /// <summary>Budgets: the price table, the ledger, metering of every LLM call, the billing provisioning step.</summary>
    public static IHostApplicationBuilder AddBilling(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<BillingOptions>(builder.Configuration.GetSection(BillingOptions.Section));
        builder.Services.AddSingleton<PriceTable>();
        builder.Services.AddSingleton<Ledger>();
        builder.Services.AddSingleton<IProvisioningStep, BillingStep>();
        builder.Services.AddSingleton<IAccountPart, BillingPart>();

        // Full profile: every account also gets a LiteLLM user and virtual key, and LLM calls go through LiteLLM with it.
        builder.AddLiteLlm();
        var liteLlm = builder.Configuration.GetSection(LiteLlmOptions.Section).Get<LiteLlmOptions>() ?? new LiteLlmOptions();
        if (liteLlm.Enabled)
        {
            var directory = Data.DataFolder.Resolve(builder.Configuration, builder.Environment);
            builder.Services.AddDataProtection()
                .SetApplicationName("AiChat")
                .PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(directory, "keys", "data-protection")));
            builder.Services.AddSingleton<LiteLlmKeyStore>();
            builder.Services.AddSingleton<IProvisioningStep, LiteLlmStep>();
            builder.Services.AddSingleton<IBudgetSync, LiteLlmBudgetSync>();
        }

        return builder;
    }
}

/// <summary>Provisioning: every account gets its billing account with the default grant.</summary>
public sealed class BillingStep(Ledger ledger) : IProvisioningStep
{
    public string Name => "billing";

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) => ledger.EnsureAccountAsync(account.UserId, cancellationToken);

    public Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken) => ledger.DeleteAccountAsync(userId, cancellationToken);
}

/// <summary>The budget's part of the account's health and export.</summary>
public sealed class BillingPart(Ledger ledger, TimeProvider time) : IAccountPart
{
    public string Name => "billing";

    public async Task<AccountPartHealth> CheckAsync(Guid userId, CancellationToken cancellationToken) =>
        await ledger.GetStateAsync(userId, cancellationToken) switch
        {
            null => new(false, "missing", "The account has no billing account."),
            { Remaining: 0 } => new(true, "exhausted", "The budget for this period is used up."),
            _ => new(true, "ok"),
        };

    public async Task<object?> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var state = await ledger.GetStateAsync(userId, cancellationToken);
        var usage = await ledger.UsageAsync(userId, DateTimeOffset.UnixEpoch, time.GetUtcNow().AddDays(1), "day", cancellationToken);
        return new
        {
            budget = state is null ? null : BudgetDto.From(state),
            usage_by_day = usage.Select(r => new UsagePoint(r.Key, PriceTable.ToUsd(r.CostNanos), r.PromptTokens, r.CompletionTokens, r.Calls)),
        };
    }
}
