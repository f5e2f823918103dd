using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;

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
            // The key ring lives in the store: replicas on one Postgres share it (keys once kept in the data folder are copied in).
            var legacyFolder = Path.Combine(Data.DataFolder.Resolve(builder.Configuration, builder.Environment), "keys", "data-protection");
            builder.Services.AddDataProtection().SetApplicationName("AiChat");
            builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(services => new ConfigureOptions<KeyManagementOptions>(options =>
                options.XmlRepository = new Data.StoredDataProtectionKeys(services.GetRequiredService<Data.AiChatDb>(), legacyFolder, TimeProvider.System)));
            builder.Services.AddSingleton<LiteLlmKeyStore>();
            builder.Services.AddSingleton<IBudgetSync, LiteLlmBudgetSync>();
        }

        return builder;
    }
}
