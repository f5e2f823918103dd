using Microsoft.AspNetCore.DataProtection;

namespace AiChat.Api.Billing;

public static class BillingExtensions
{
    /// <summary>Budgets: the price table, the ledger, metering of every LLM call.</summary>
    public static IHostApplicationBuilder AddBilling(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<BillingOptions>(builder.Configuration.GetSection(BillingOptions.Section));
        builder.Services.AddSingleton<PriceTable>();
        builder.Services.AddSingleton<Ledger>();

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
            builder.Services.AddSingleton<IBudgetSync, LiteLlmBudgetSync>();
        }

        return builder;
    }
}
