using AiChat.Api.Users;

namespace AiChat.Api.Auth;

/// <summary>What a new account is made of, handed to every provisioning step.</summary>
public sealed record NewAccount(Guid UserId, string Email, string? Name, string Role, string? PasswordHash, string? ExternalId);

/// <summary>
/// One part of an account (its profile; later its agent and billing). Provisioning must be idempotent for the same user,
/// so a retry after a failure completes without duplicates; deprovisioning undoes it and tolerates a part that is missing.
/// </summary>
public interface IProvisioningStep
{
    string Name { get; }

    Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken);

    Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken);
}

public sealed class ProvisioningFailedException(string step, Exception inner)
    : Exception($"Provisioning step '{step}' failed; the steps before it were undone.", inner)
{
    public string Step { get; } = step;
}

public sealed class EmailTakenException() : Exception("An account with this email already exists.");

/// <summary>Runs the steps in order; when one fails, undoes the ones before it, last first: all or nothing.</summary>
public sealed partial class ProvisioningPipeline(IEnumerable<IProvisioningStep> steps, ILogger<ProvisioningPipeline> logger)
{
    private readonly IProvisioningStep[] _steps = steps.ToArray();

    public IReadOnlyList<string> StepNames => _steps.Select(s => s.Name).ToArray();

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var done = new Stack<IProvisioningStep>();
        foreach (var step in _steps)
        {
            try
            {
                await step.ProvisionAsync(account, cancellationToken);
                done.Push(step);
            }
            catch (Exception ex)
            {
                LogStepFailed(logger, ex, step.Name, account.UserId);
                while (done.TryPop(out var previous))
                {
                    await UndoAsync(previous, account.UserId);
                }

                if (ex is EmailTakenException)
                {
                    throw; // nothing of this user's was written by the refusing step
                }

                // The failing step may have done part of its work.
                await UndoAsync(step, account.UserId);
                throw new ProvisioningFailedException(step.Name, ex);
            }
        }
    }

    /// <summary>Removes the account part by part, last step first; the profile (and with it every row the user owns) goes last.</summary>
    public async Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken)
    {
        foreach (var step in _steps.Reverse())
        {
            await step.DeprovisionAsync(userId, cancellationToken);
        }
    }

    private async Task UndoAsync(IProvisioningStep step, Guid userId)
    {
        try
        {
            // Undo must finish even if the request that started it was cancelled.
            await step.DeprovisionAsync(userId, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogUndoFailed(logger, ex, step.Name, userId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provisioning step {Step} failed for user {UserId}; undoing the steps before it")]
    private static partial void LogStepFailed(ILogger logger, Exception exception, string step, Guid userId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Undoing provisioning step {Step} for user {UserId} failed")]
    private static partial void LogUndoFailed(ILogger logger, Exception exception, string step, Guid userId);
}

/// <summary>The account's profile row; deleting it removes every row the user owns.</summary>
public sealed class ProfileStep(UserStore users, TimeProvider time) : IProvisioningStep
{
    public string Name => "profile";

    public async Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var user = new UserAccount(account.UserId, account.Email.Trim(), account.Name, account.Role, account.PasswordHash, account.ExternalId, now, now);
        if (await users.TryInsertAsync(user, cancellationToken))
        {
            return;
        }

        // A retry for the same user finds its own row; a row of anyone else means the email is taken.
        if (await users.FindAsync(account.UserId, cancellationToken) is null)
        {
            throw new EmailTakenException();
        }
    }

    public Task DeprovisionAsync(Guid userId, CancellationToken cancellationToken) => users.DeleteAsync(userId, cancellationToken);
}
