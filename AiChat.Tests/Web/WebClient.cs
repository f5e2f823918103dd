using AiChat.Api.Data;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using AiChat.Tests.Infrastructure;
using Microsoft.Playwright;

namespace AiChat.Tests.Web;

/// <summary>
/// The embedded system (API and gateway on loopback, on one store) with a browser page on the gateway's web client.
/// Every page error and console error is collected: a test ends by asserting there were none.
/// </summary>
public sealed class WebClient : IAsyncDisposable
{
    private readonly List<string> _errors = [];

    private WebClient(RunningSystem system, IBrowserContext context, IPage page)
    {
        System = system;
        Context = context;
        Page = page;
        page.PageError += (_, error) => { lock (_errors) { _errors.Add($"page error: {error}"); } };
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !ExpectedConsoleError(message.Text))
            {
                lock (_errors) { _errors.Add($"console: {message.Text}"); }
            }
        };
    }

    public RunningSystem System { get; }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    public IReadOnlyList<string> Errors { get { lock (_errors) { return [.. _errors]; } } }

    /// <summary>Failed requests the page made on purpose or that a test provoked (a 409, a dropped stream) are expected.</summary>
    public Func<string, bool> ExpectedConsoleError { get; set; } = text => text.StartsWith("Failed to load resource", StringComparison.Ordinal);

    public static async Task<WebClient> StartAsync(Browser browser, PostgresServer postgres, StoreProvider provider, Action<ApiFactory>? configure = null, int width = 1280, int height = 800, string locale = "en-US")
    {
        var api = new ApiFactory();
        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        configure?.Invoke(api);
        var system = RunningSystem.Start(api);
        var context = await browser.NewContextAsync(system.GatewayAddress, width, height, locale);
        var page = await context.NewPageAsync();
        return new WebClient(system, context, page);
    }

    /// <summary>Opens the client and registers a new account through its form; waits until the chat is shown.</summary>
    public async Task<(string Email, string Password)> RegisterAsync(string? name = null)
    {
        var email = Accounts.NewEmail("web");
        var password = Accounts.NewPassword();
        await Page.GotoAsync("/");
        await Page.Locator("#auth-tab-register").ClickAsync();
        if (name is not null)
        {
            await Page.Locator("#auth-name").FillAsync(name);
        }

        await SubmitCredentialsAsync(email, password);
        return (email, password);
    }

    /// <summary>Opens the client and logs in through its form; waits until the chat is shown.</summary>
    public async Task LoginAsync(string email, string password)
    {
        await Page.GotoAsync("/");
        await SubmitCredentialsAsync(email, password);
    }

    private async Task SubmitCredentialsAsync(string email, string password)
    {
        await Page.Locator("#auth-email").FillAsync(email);
        await Page.Locator("#auth-password").FillAsync(password);
        await Page.Locator("#auth-submit").ClickAsync();
        await Assertions.Expect(Page.Locator("#composer-input")).ToBeVisibleAsync();
        await Assertions.Expect(Page.Locator(".conversation-link[aria-current=page]")).ToBeVisibleAsync();
    }

    /// <summary>A client of the gateway signed in as the page's user would be (to seed data or read it back).</summary>
    public async Task<HttpClient> ApiClientAsync(string email, string password)
    {
        var client = System.GatewayClient();
        var pair = await client.LoginAsync(email, password);
        return client.As(pair.AccessToken);
    }

    /// <summary>Sends a message with the keyboard (Enter) and waits until its answer has ended.</summary>
    /// <param name="shownAs">Text the sent message shows (when Markdown renders it differently from what was typed).</param>
    public async Task<ILocator> SendAsync(string text, string? shownAs = null)
    {
        await Page.Locator("#composer-input").FillAsync(text);
        await Page.Locator("#composer-input").PressAsync("Enter");
        // The answer is the item right after the user's message (counting answers would race a conversation switch).
        var answer = Page.Locator(".message-user", new() { HasText = shownAs ?? text }).Last.Locator("xpath=following-sibling::li[1]");
        await Assertions.Expect(answer).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("message-assistant"));
        await Assertions.Expect(answer).Not.ToHaveAttributeAsync("data-status", "streaming", new() { Timeout = 30_000 });
        return answer;
    }

    public async Task ScreenshotAsync(string name)
    {
        Directory.CreateDirectory(Browser.ScreenshotDirectory);
        await Page.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotDirectory, $"{name}.png"), FullPage = false });
    }

    public void AssertNoErrors() => Assert.Empty(Errors);

    /// <summary>
    /// Runs a wait on the page; when it times out, fails with what the store holds of the turns (status, last event,
    /// heartbeat, events stored) beside Playwright's message, so a stream that stalled says where it stalled.
    /// </summary>
    public async Task ExpectAsync(Func<Task> wait)
    {
        try
        {
            await wait();
        }
        catch (PlaywrightException timedOut)
        {
            await using var connection = await System.Api.Services.GetRequiredService<AiChatDb>().OpenAsync(CancellationToken.None);
            var turns = await connection.QueryAsync<(string Status, long LastEventSeq, string CreatedAt, string HeartbeatAt, long Events)>(
                "SELECT status, CAST(last_event_seq AS BIGINT), CAST(created_at AS TEXT), CAST(heartbeat_at AS TEXT), CAST((SELECT COUNT(*) FROM turn_events e WHERE e.turn_id = t.id) AS BIGINT) FROM turns t ORDER BY created_at");
            var report = string.Join("\n", turns.Select(t => $"turn {t.Status}, last event {t.LastEventSeq}, {t.Events} events stored, created {t.CreatedAt}, heartbeat {t.HeartbeatAt}"));
            throw new Xunit.Sdk.XunitException($"{timedOut.Message}\nThe store at the timeout ({DateTimeOffset.UtcNow:O}):\n{report}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Context.DisposeAsync();
        await System.DisposeAsync();
    }
}
