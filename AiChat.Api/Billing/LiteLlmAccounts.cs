using System.Collections.Concurrent;
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

/// <summary>Keeps LiteLLM's copy of a user's budget in step with the ledger's grant and personal limit.</summary>
public sealed class LiteLlmBudgetSync(LiteLlmClient liteLlm) : IBudgetSync
{
    public Task BudgetChangedAsync(Guid userId, BudgetState state, CancellationToken cancellationToken) =>
        liteLlm.UpdateUserBudgetAsync(userId, PriceTable.ToUsd(state.EffectiveLimit), LiteLlmClient.Duration(state.Duration), cancellationToken);
}
