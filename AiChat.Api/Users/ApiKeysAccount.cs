namespace AiChat.Api.Users;

/// <summary>
/// The account's personal API keys: nothing to provision; deleting the account revokes them first (this component is
/// the last in order, so the first deleted), before the rest of the account goes. The export lists them, never a secret.
/// </summary>
public sealed class ApiKeysAccount(ApiKeyStore keys) : IAccountComponent
{
    public string Name => "api_keys";

    public int Order => AccountOrder.ApiKeys;

    public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task DeleteAsync(Guid userId, CancellationToken cancellationToken) => keys.RevokeAllAsync(userId, cancellationToken);

    public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken) => Task.FromResult<AccountCheck?>(null);

    public async Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken) =>
        new((await keys.ListAsync(userId, cancellationToken)).Select(ApiKeyDto.From).ToList());
}
