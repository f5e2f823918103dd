using Microsoft.Playwright;

[assembly: AssemblyFixture(typeof(AiChat.Tests.Infrastructure.Browser))]

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// Headless Chromium driven by Playwright: Debian's <c>chromium</c> (<see cref="ExecutablePathVariable"/> names another),
/// started once for the whole run when the first browser test asks for it. Missing, it fails in CI and skips elsewhere.
/// </summary>
public sealed class Browser : IAsyncDisposable
{
    public const string ExecutablePathVariable = "AICHAT_TEST_CHROMIUM";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    /// <summary>Where the browser tests leave their screenshots: beside the test results.</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(SolutionRoot(), "TestResults", "screenshots");

    /// <summary>A fresh browser context (its own storage, as a new visitor) at the given size.</summary>
    public async Task<IBrowserContext> NewContextAsync(Uri baseAddress, int width = 1280, int height = 800, string locale = "en-US")
    {
        var browser = await StartAsync();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            Locale = locale,
        });
        context.SetDefaultTimeout(15_000);
        return context;
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }

    private async Task<IBrowser> StartAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_browser is not null)
            {
                return _browser;
            }

            var executable = Environment.GetEnvironmentVariable(ExecutablePathVariable) is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
            if (!File.Exists(executable))
            {
                Prerequisite.Missing($"Chromium at {executable} (install Debian's chromium package, or set {ExecutablePathVariable}).");
            }

            _playwright = await Playwright.CreateAsync();
            _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = executable,
                Headless = true,
                // This machine's network is closed: without these Chromium keeps trying to reach Google's hosts.
                Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            });
            return _browser;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static string SolutionRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AiChat.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? AppContext.BaseDirectory;
    }
}
