using AiChat.Api.Billing;

namespace AiChat.Api.Users;

/// <summary>
/// Full profile: a LiteLLM internal user carrying the account's budget, and its virtual key (stored encrypted).
/// It adds nothing to the health or the export: the key never leaves the server.
/// </summary>
public sealed class LiteLlmAccount(LiteLlmClient liteLlm, LiteLlmKeyStore keys, Ledger ledger) : IAccountComponent
{
    public string Name => "litellm";

    public int Order => AccountOrder.LiteLlm;

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var budget = await ledger.GetStateAsync(account.UserId, cancellationToken) ?? throw new BillingAccountMissingException();
        await liteLlm.CreateUserAsync(account.UserId, PriceTable.ToUsd(budget.EffectiveLimit), LiteLlmClient.Duration(budget.Duration), cancellationToken);
        var key = await liteLlm.GenerateKeyAsync(account.UserId, cancellationToken);
        await keys.SaveAsync(account.UserId, key, cancellationToken);
    }

    public async Task DeleteAsync(Guid userId, CancellationToken cancellationToken)
    {
        if (await keys.FindAsync(userId, cancellationToken) is { } key)
        {
            await liteLlm.DeleteKeyAsync(key, cancellationToken);
        }

        keys.Forget(userId);
        await liteLlm.DeleteUserAsync(userId, cancellationToken);
    }

    public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(null);

    public Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<ExportSection?>(null);
}
