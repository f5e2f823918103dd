namespace AiChat.Tests.Infrastructure;

/// <summary>
/// The browser tests run one class at a time and alone, after the parallel collections: Playwright's waits are for what a
/// person sees, and beside the soak, the AppHost runs and the two-process tests a loaded 2-core machine made them miss.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BrowserCollection
{
    public const string Name = "Browser";
}
