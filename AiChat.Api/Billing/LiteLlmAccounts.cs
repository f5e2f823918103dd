using System.Collections.Concurrent;
using AiChat.Api.Auth;
using AiChat.Api.Data;
using Dapper;
using Microsoft.AspNetCore.DataProtection;

namespace AiChat.Api.Billing;

/// <summary>
/// Each user's LiteLLM virtual key, kept encrypted at rest with ASP.NET Core Data Protection in the billing account row
/// and never returned by any endpoint; decrypted keys are cached in memory only.
/// </summary>
public sealed class LiteLlmKeyStore(AiChatDb db, IDataProtectionProvider protection)
{
    private readonly IDataProtector _protector = protection.CreateProtector("AiChat.LiteLlm.VirtualKeys.v1");
    private readonly ConcurrentDictionary<Guid, string> _cache = new();

    public async Task SaveAsync(Guid userId, string key, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE billing_accounts SET litellm_user_id = @liteLlmUser, litellm_key_protected = @protectedKey WHERE user_id = @userId",
            new { userId, liteLlmUser = userId.ToString(), protectedKey = _protector.Protect(key) }, cancellationToken: cancellationToken));
        _cache[userId] = key;
    }

    public async Task<string?> FindAsync(Guid userId, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(userId, out var cached))
        {
            return cached;
        }

        await using var connection = await db.OpenAsync(cancellationToken);
        var stored = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT litellm_key_protected FROM billing_accounts WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
        return stored is null ? null : _cache[userId] = _protector.Unprotect(stored);
    }

    public void Forget(Guid userId) => _cache.TryRemove(userId, out _);
}

/// <summary>Provisioning (full profile): a LiteLLM internal user carrying the account's budget, and its virtual key.</summary>
public sealed class LiteLlmStep(LiteLlmClient liteLlm, LiteLlmKeyStore keys, Ledger ledger) : IProvisioningStep
{
    public string Name => "litellm";

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var budget = await ledger.GetStateAsync(account.UserId, cancellationToken) ?? throw new BillingAccountMissingException();
        await liteLlm.CreateUserAsync(account.UserId, PriceTable.ToUsd(budget.EffectiveLimit), LiteLlmClient.Duration(budget.Duration), cancellationToken);
        var key = await liteLlm.GenerateKeyAsync(account.UserId, cancellationToken);
        await keys.SaveAsync(account.UserId, key, cancellationToken);
    }

    public async Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken)
    {
        if (await keys.FindAsync(userId, cancellationToken) is { } key)
        {
            await liteLlm.DeleteKeyAsync(key, cancellationToken);
        }

        keys.Forget(userId);
        await liteLlm.DeleteUserAsync(userId, cancellationToken);
    }
}

/// <summary>Keeps LiteLLM's copy of a user's budget in step with the ledger's grant and personal limit.</summary>
public sealed class LiteLlmBudgetSync(LiteLlmClient liteLlm) : IBudgetSync
{
    public Task BudgetChangedAsync(Guid userId, BudgetState state, CancellationToken cancellationToken) =>
        liteLlm.UpdateUserBudgetAsync(userId, PriceTable.ToUsd(state.EffectiveLimit), LiteLlmClient.Duration(state.Duration), cancellationToken);
}
