using AiChat.Api.Users;
using Microsoft.Extensions.Logging.Abstractions;

namespace AiChat.Tests.Users;

/// <summary>The account lifecycle on its own: declared order, reverse deletion, all-or-nothing provisioning.</summary>
[Trait("Category", "Users")]
public sealed class AccountLifecycleTests
{
    private readonly List<string> _log = [];

    [Fact]
    public async Task ComponentsRunInTheirDeclaredOrderWhateverOrderTheyWereRegisteredIn()
    {
        var lifecycle = Lifecycle(
            Component("conversation", AccountOrder.Chat),
            Component("billing", AccountOrder.Billing),
            Component("profile", AccountOrder.Profile),
            Component("litellm", AccountOrder.LiteLlm),
            Component("agent", AccountOrder.Agent));

        await lifecycle.ProvisionAsync(NewAccount(), TestContext.Current.CancellationToken);
        var health = await lifecycle.CheckAsync(Guid.NewGuid(), TestContext.Current.CancellationToken);
        var export = await lifecycle.ExportAsync(Guid.NewGuid(), TestContext.Current.CancellationToken);

        Assert.Equal(["profile", "agent", "billing", "litellm", "conversation"], lifecycle.ComponentNames);
        Assert.Equal(
            ["provision profile", "provision agent", "provision billing", "provision litellm", "provision conversation",
             "check profile", "check agent", "check billing", "check litellm", "check conversation",
             "export profile", "export agent", "export billing", "export litellm", "export conversation"],
            _log);
        Assert.Equal(["profile", "agent", "billing", "litellm", "conversation"], health.Checks.Keys);
        Assert.Equal(["exported_at", "profile", "agent", "billing", "litellm", "conversation"], export.Keys);
    }

    [Fact]
    public async Task DeletingRunsTheComponentsInReverseOrder()
    {
        var lifecycle = Lifecycle(
            Component("agent", AccountOrder.Agent),
            Component("conversation", AccountOrder.Chat),
            Component("profile", AccountOrder.Profile),
            Component("billing", AccountOrder.Billing));

        await lifecycle.DeleteAsync(Guid.NewGuid(), TestContext.Current.CancellationToken);

        Assert.Equal(["delete conversation", "delete billing", "delete agent", "delete profile"], _log);
    }

    [Fact]
    public async Task AFailingComponentIsUndoneWithTheOnesBeforeItLastFirstAndTheOnesAfterItNeverRun()
    {
        var lifecycle = Lifecycle(
            Component("conversation", AccountOrder.Chat),
            Component("billing", AccountOrder.Billing, fails: new InvalidOperationException("down")),
            Component("agent", AccountOrder.Agent),
            Component("profile", AccountOrder.Profile));

        var failure = await Assert.ThrowsAsync<ProvisioningFailedException>(() => lifecycle.ProvisionAsync(NewAccount(), TestContext.Current.CancellationToken));

        Assert.Equal("billing", failure.Component);
        Assert.IsType<InvalidOperationException>(failure.InnerException);
        Assert.Equal(["provision profile", "provision agent", "provision billing", "delete agent", "delete profile", "delete billing"], _log);
    }

    [Fact]
    public async Task ATakenEmailUndoesTheComponentsBeforeTheRefusingOneButNotItself()
    {
        var lifecycle = Lifecycle(
            Component("agent", AccountOrder.Agent),
            Component("profile", AccountOrder.Profile),
            Component("early", AccountOrder.Profile - 1),
            Component("profile-like", AccountOrder.Profile + 1, fails: new EmailTakenException()));

        await Assert.ThrowsAsync<EmailTakenException>(() => lifecycle.ProvisionAsync(NewAccount(), TestContext.Current.CancellationToken));

        Assert.Equal(["provision early", "provision profile", "provision profile-like", "delete profile", "delete early"], _log);
    }

    [Fact]
    public async Task AnUndoThatFailsDoesNotStopTheOthers()
    {
        var lifecycle = Lifecycle(
            Component("profile", AccountOrder.Profile),
            Component("agent", AccountOrder.Agent, failsToDelete: true),
            Component("billing", AccountOrder.Billing, fails: new InvalidOperationException("down")));

        await Assert.ThrowsAsync<ProvisioningFailedException>(() => lifecycle.ProvisionAsync(NewAccount(), TestContext.Current.CancellationToken));

        Assert.Equal(["provision profile", "provision agent", "provision billing", "delete agent", "delete profile", "delete billing"], _log);
    }

    [Fact]
    public async Task AComponentWithoutHealthOrExportAddsNoKey()
    {
        var lifecycle = Lifecycle(Component("profile", AccountOrder.Profile), Component("silent", AccountOrder.LiteLlm, reports: false));

        var health = await lifecycle.CheckAsync(Guid.NewGuid(), TestContext.Current.CancellationToken);
        var export = await lifecycle.ExportAsync(Guid.NewGuid(), TestContext.Current.CancellationToken);

        Assert.Equal("healthy", health.Status);
        Assert.Equal(["profile"], health.Checks.Keys);
        Assert.Equal(["exported_at", "profile"], export.Keys);
    }

    [Fact]
    public void TwoComponentsInTheSamePlaceAreRefused()
    {
        var failure = Assert.Throws<InvalidOperationException>(() => Lifecycle(Component("agent", AccountOrder.Agent), Component("other", AccountOrder.Agent)));

        Assert.Equal("The account components agent, other share the order 200.", failure.Message);
        Assert.Throws<InvalidOperationException>(() => Lifecycle(Component("agent", AccountOrder.Agent), Component("agent", AccountOrder.Billing)));
    }

    private static AccountLifecycle Lifecycle(params IAccountComponent[] components) =>
        new(components, TimeProvider.System, NullLogger<AccountLifecycle>.Instance);

    private static NewAccount NewAccount() => new(Guid.NewGuid(), "ana@example.com", "Ana", Roles.User, null, null);

    private Recorder Component(string name, int order, Exception? fails = null, bool failsToDelete = false, bool reports = true) =>
        new(name, order, _log, fails, failsToDelete, reports);

    private sealed class Recorder(string name, int order, List<string> log, Exception? fails, bool failsToDelete, bool reports) : IAccountComponent
    {
        public string Name => name;

        public int Order => order;

        public Task ProvisionAsync(NewAccount account, CancellationToken cancellationToken)
        {
            log.Add($"provision {name}");
            return fails is null ? Task.CompletedTask : Task.FromException(fails);
        }

        public Task DeleteAsync(Guid userId, CancellationToken cancellationToken)
        {
            log.Add($"delete {name}");
            return failsToDelete ? Task.FromException(new InvalidOperationException("cannot delete")) : Task.CompletedTask;
        }

        public Task<AccountCheck?> CheckAsync(Guid userId, CancellationToken cancellationToken)
        {
            log.Add($"check {name}");
            return Task.FromResult(reports ? AccountCheck.Fine : null);
        }

        public Task<ExportSection?> ExportAsync(Guid userId, CancellationToken cancellationToken)
        {
            log.Add($"export {name}");
            return Task.FromResult(reports ? new ExportSection(name) : null);
        }
    }
}
