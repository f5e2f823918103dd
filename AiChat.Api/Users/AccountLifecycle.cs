namespace AiChat.Api.Users;

/// <summary>What a new account is made of, handed to every component.</summary>
public sealed record NewAccount(Guid UserId, string Email, string? Name, string Role, string? PasswordHash, string? ExternalId);

/// <summary>
/// The order of an account's components: provisioned in this order, deleted in reverse, reported in this order by
/// health and export. The profile comes first (every other row hangs off it) and goes last.
/// </summary>
public static class AccountOrder
{
    public const int Profile = 100;
    public const int Agent = 200;
    public const int Billing = 300;
    public const int LiteLlm = 400;
    public const int Chat = 500;

    /// <summary>Last, so an account's keys are the first thing its deletion revokes.</summary>
    public const int ApiKeys = 600;
}

/// <summary>
/// One part of an account (its profile, agent, billing account, LiteLLM user, conversation), owned by the feature that
/// implements it. Provisioning must be idempotent for the same user, so a retry after a failure completes without
/// duplicates; deleting undoes it and tolerates a part that is missing.
/// </summary>
public interface IAccountComponent
{
    /// <summary>The component's key in the health and export answers.</summary>
    string Name { get; }

    /// <summary>Its place among the components, one of <see cref="AccountOrder"/>.</summary>
    int Order { get; }

    Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken);

    Task DeleteAsync(Guid userId, CancellationToken cancellationToken);

    /// <summary>The component's health, or null when it reports none of its own.</summary>
    Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken);

    /// <summary>The component's section of the export, or null when it has none.</summary>
    Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken);
}

public sealed record AccountCheck(bool Ok, string Status, string? Detail = null)
{
    public static readonly AccountCheck Fine = new(true, "ok");

    public static AccountCheck Missing(string detail) => new(false, "missing", detail);
}

/// <summary>A component's part of the export; its data may be null (e.g. an account that has no agent).</summary>
public sealed record ExportSection(object? Data);

public sealed class ProvisioningFailedException(string component, Exception inner)
    : Exception($"Provisioning component '{component}' failed; the components before it were undone.", inner)
{
    public string Component { get; } = component;
}

public sealed class EmailTakenException() : Exception("An account with this email already exists.");

/// <summary>
/// The one place an account is made, removed, checked and exported: every <see cref="IAccountComponent"/>, in
/// <see cref="IAccountComponent.Order"/> whatever order they were registered in.
/// </summary>
public sealed partial class AccountLifecycle
{
    private readonly IAccountComponent[] _components;
    private readonly TimeProvider _time;
    private readonly ILogger<AccountLifecycle> _logger;

    public AccountLifecycle(IEnumerable<IAccountComponent> components, TimeProvider time, ILogger<AccountLifecycle> logger)
    {
        _components = components.OrderBy(c => c.Order).ToArray();
        _time = time;
        _logger = logger;
        if (_components.GroupBy(c => c.Order).FirstOrDefault(g => g.Count() > 1) is { } sameOrder)
        {
            throw new InvalidOperationException($"The account components {string.Join(", ", sameOrder.Select(c => c.Name))} share the order {sameOrder.Key}.");
        }

        if (_components.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1) is { } sameName)
        {
            throw new InvalidOperationException($"Two account components are named '{sameName.Key}'.");
        }
    }

    public IReadOnlyList<string> ComponentNames => _components.Select(c => c.Name).ToArray();

    /// <summary>Provisions every component in order; when one fails, undoes the ones before it, last first: all or nothing.</summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var done = new Stack<IAccountComponent>();
        foreach (var component in _components)
        {
            try
            {
                await component.ProvisionAsync(account, cancellationToken);
                done.Push(component);
            }
            catch (Exception ex)
            {
                LogProvisionFailed(_logger, ex, component.Name, account.UserId);
                while (done.TryPop(out var previous))
                {
                    await UndoAsync(previous, account.UserId);
                }

                if (ex is EmailTakenException)
                {
                    throw; // nothing of this user's was written by the refusing component
                }

                // The failing component may have done part of its work.
                await UndoAsync(component, account.UserId);
                throw new ProvisioningFailedException(component.Name, ex);
            }
        }
    }

    /// <summary>Removes the account component by component, last first; the profile (and with it every row the user owns) goes last.</summary>
    public async Task DeleteAsync(Guid userId, CancellationToken cancellationToken)
    {
        foreach (var component in _components.Reverse())
        {
            await component.DeleteAsync(userId, cancellationToken);
        }
    }

    public async Task<AccountHealth> CheckAsync(Guid userId, CancellationToken cancellationToken)
    {
        var checks = new Dictionary<string, AccountCheck>();
        foreach (var component in _components)
        {
            if (await component.CheckAsync(userId, cancellationToken) is { } check)
            {
                checks[component.Name] = check;
            }
        }

        return new AccountHealth(checks.Values.All(c => c.Ok) ? "healthy" : "degraded", checks);
    }

    /// <summary>All of the account's data: when it was exported, then one section per component.</summary>
    public async Task<Dictionary<string, object?>> ExportAsync(Guid userId, CancellationToken cancellationToken)
    {
        var export = new Dictionary<string, object?> { ["exported_at"] = _time.GetUtcNow() };
        foreach (var component in _components)
        {
            if (await component.ExportAsync(userId, cancellationToken) is { } section)
            {
                export[component.Name] = section.Data;
            }
        }

        return export;
    }

    private async Task UndoAsync(IAccountComponent component, Guid userId)
    {
        try
        {
            // Undo must finish even if the request that started it was cancelled.
            await component.DeleteAsync(userId, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogUndoFailed(_logger, ex, component.Name, userId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provisioning account component {Component} failed for user {UserId}; undoing the components before it")]
    private static partial void LogProvisionFailed(ILogger logger, Exception exception, string component, Guid userId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Undoing account component {Component} for user {UserId} failed")]
    private static partial void LogUndoFailed(ILogger logger, Exception exception, string component, Guid userId);
}
