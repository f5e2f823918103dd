using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace AiChat.Tests.Web;

/// <summary>The web client in headless Chromium, through the gateway, against the real API on both stores.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Category", "Browser")]
public sealed class WebClientTests(Browser browser, PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AUsersChatsMemoryAndHistorySurviveAReloadAndTheirConversationsCanBeManaged(StoreProvider provider)
    {
        // The offline model's own pace (as a person running AiChat sees it), so the reply is seen arriving.
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => api.WithSetting("Llm:Offline:WordDelay", "00:00:00.060"));
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();

        await page.Locator("#composer-input").FillAsync("my name is Ana");
        await page.Locator("#composer-input").PressAsync("Enter");
        var first = page.Locator(".message-assistant").Last;
        await Expect(first.Locator(".message-body")).ToContainTextAsync("[offline model]");
        await Expect(first).ToHaveAttributeAsync("data-status", "streaming");
        await Expect(first).ToHaveAttributeAsync("data-status", "complete", new() { Timeout = 30_000 });
        await Expect(page.Locator(".conversation-link[aria-current=page] .conversation-title")).ToHaveTextAsync("My name is Ana");

        await page.GetByRole(AriaRole.Button, new() { Name = "New chat" }).ClickAsync();
        await Expect(page.Locator(".empty-hint")).ToBeVisibleAsync();
        var answer = await web.SendAsync("what is my name?");
        await Expect(answer.Locator(".message-body")).ToContainTextAsync("Your name is Ana");
        await Expect(page.Locator(".conversation-title")).ToHaveTextAsync(["What is my name", "My name is Ana"]);
        await web.ScreenshotAsync($"chat-desktop-{provider}");

        // A reload keeps the session, the conversations and their histories.
        await page.ReloadAsync();
        await Expect(page.Locator(".conversation-title")).ToHaveTextAsync(["What is my name", "My name is Ana"]);
        await Expect(page.Locator(".message-user .message-body")).ToHaveTextAsync(["what is my name?"]);
        await page.Locator(".conversation-link", new() { HasText = "My name is Ana" }).ClickAsync();
        await Expect(page.Locator(".message-user .message-body")).ToHaveTextAsync(["my name is Ana"]);
        await Expect(page.Locator("#chat-title")).ToHaveTextAsync("My name is Ana");

        // Rename through the dialog, with the keyboard.
        await page.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await page.Locator("#name-input").FillAsync("About me");
        await page.Locator("#name-input").PressAsync("Enter");
        await Expect(page.Locator(".conversation-title")).ToHaveTextAsync(["What is my name", "About me"]);

        // Search across conversations: a hit opens its conversation at the message.
        await page.Locator("#search-input").FillAsync("name");
        await page.Locator("#search-input").PressAsync("Enter");
        await Expect(page.Locator(".hit")).ToHaveCountAsync(4);
        await Expect(page.Locator(".hit-snippet mark").First).ToHaveTextAsync("name");
        await page.Locator(".hit", new() { HasText = "what is my name?" }).First.ClickAsync();
        await Expect(page.Locator("#chat-title")).ToHaveTextAsync("What is my name");
        await Expect(page.Locator(".message.highlight .message-body")).ToHaveTextAsync("what is my name?");

        // Delete asks first, then the conversation is gone here and in the API.
        using var api = await web.ApiClientAsync(email, password);
        var doomed = await page.Locator(".conversation-link[aria-current=page]").GetAttributeAsync("data-id");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await page.Locator("#confirm-ok").ClickAsync();
        await Expect(page.Locator(".conversation-title")).ToHaveTextAsync(["About me"]);
        await Expect(page.Locator("#chat-title")).ToHaveTextAsync("About me");
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/api/v1/conversations/{doomed}", TestContext.Current.CancellationToken)).StatusCode);

        // Log out: the session is gone, also after a reload.
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Expect(page.Locator("#auth-form")).ToBeVisibleAsync();
        await page.ReloadAsync();
        await Expect(page.Locator("#auth-form")).ToBeVisibleAsync();
        Assert.Null(await page.EvaluateAsync<string?>("() => localStorage.getItem('aichat.session')"));
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AStreamThatDropsIsResumedAndItsTextEqualsTheStoredMessage(StoreProvider provider)
    {
        await using var llm = await FakeLlmAsync();
        var reply = string.Join(' ', Enumerable.Range(1, 60).Select(i => $"word{i}"));
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(reply, chunkSize: 6), TimeSpan.FromMilliseconds(10)));
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => OnFake(api, llm));
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();

        // The first stream is cut after its third text delta; the first attempt to resume finds the network down.
        var cutAfter = 0;
        string? resumedFrom = null;
        var resumeAttempts = 0;
        await page.RouteAsync("**/api/v1/conversations/*/messages", async route =>
        {
            if (route.Request.Method != "POST")
            {
                await route.ContinueAsync();
                return;
            }

            var response = await route.FetchAsync();
            var (head, lastId) = Sse.Cut(await response.TextAsync(), deltas: 3);
            cutAfter = lastId;
            await route.FulfillAsync(new() { Response = response, Body = head });
        });
        await page.RouteAsync("**/api/v1/chat/turns/*/events", async route =>
        {
            if (Interlocked.Increment(ref resumeAttempts) == 1)
            {
                await route.AbortAsync("internetdisconnected");
                return;
            }

            resumedFrom = await route.Request.HeaderValueAsync("last-event-id");
            await route.ContinueAsync();
        });

        var answer = await web.SendAsync("tell me a long story");

        await Expect(answer).ToHaveAttributeAsync("data-status", "complete");
        Assert.True(cutAfter > 0, "the stream was cut");
        Assert.Equal(cutAfter.ToString(System.Globalization.CultureInfo.InvariantCulture), resumedFrom);
        Assert.True(resumeAttempts >= 2, "the first resume failed and was retried");
        using var api = await web.ApiClientAsync(email, password);
        var stored = (await LastAnswerAsync(api)).GetProperty("content").GetString();
        Assert.Equal(reply, stored);
        Assert.Equal(stored, await answer.Locator(".message-body").EvaluateAsync<string>("element => element.aichatText"));
        Assert.Equal(stored, (await answer.Locator(".message-body").InnerTextAsync()).Trim());
        web.ExpectedConsoleError = text => text.StartsWith("Failed to load resource", StringComparison.Ordinal);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task MarkupInAMessageIsShownAsTextAndRunsNothing(StoreProvider provider)
    {
        const string hostile = "<img src=x onerror=\"window.__pwned=1\"> <script>window.__pwned=2</script> [click me](javascript:window.__pwned=3) **bold** [docs](https://example.com/docs)";
        await using var llm = await FakeLlmAsync();
        llm.Enqueue(FakeReply.Text(hostile));
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => OnFake(api, llm));
        var page = web.Page;
        var dialogs = 0;
        page.Dialog += (_, dialog) => { Interlocked.Increment(ref dialogs); _ = dialog.DismissAsync(); };
        var requestsToX = new List<string>();
        page.Request += (_, request) => { if (request.Url.EndsWith("/x", StringComparison.Ordinal) || request.Url.StartsWith("javascript:", StringComparison.Ordinal)) { lock (requestsToX) { requestsToX.Add(request.Url); } } };
        await web.RegisterAsync();

        var answer = await web.SendAsync(hostile, shownAs: "click me");

        foreach (var body in new[] { page.Locator(".message-user .message-body").Last, answer.Locator(".message-body") })
        {
            await Expect(body).ToContainTextAsync("<img src=x onerror=\"window.__pwned=1\">");
            await Expect(body).ToContainTextAsync("<script>window.__pwned=2</script>");
            Assert.Equal(0, await body.Locator("img, script, [onerror]").CountAsync());
            await Expect(body.Locator("strong")).ToHaveTextAsync("bold");
            var link = body.Locator("a", new() { HasText = "click me" });
            Assert.Null(await link.GetAttributeAsync("href"));
            var docs = body.Locator("a", new() { HasText = "docs" });
            await Expect(docs).ToHaveAttributeAsync("href", "https://example.com/docs");
            await Expect(docs).ToHaveAttributeAsync("rel", "noopener noreferrer");
            await Expect(docs).ToHaveAttributeAsync("target", "_blank");
            await body.Locator("a", new() { HasText = "click me" }).ClickAsync();
        }

        await page.ReloadAsync();
        await Expect(page.Locator(".message-assistant .message-body")).ToContainTextAsync("<script>window.__pwned=2</script>");
        Assert.Null(await page.EvaluateAsync<int?>("() => window.__pwned ?? null"));
        Assert.Equal(0, dialogs);
        Assert.Empty(requestsToX);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task StopEndsTheReplyAndItIsStoredAsCancelled(StoreProvider provider)
    {
        await using var llm = await FakeLlmAsync();
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(string.Join(' ', Enumerable.Repeat("slowly", 2000)), chunkSize: 7), TimeSpan.FromMilliseconds(50)));
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => OnFake(api, llm));
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();

        await page.Locator("#composer-input").FillAsync("go on");
        await page.Locator("#composer-input").PressAsync("Enter");
        var answer = page.Locator(".message-assistant").Last;
        // The first words are polled for with a deadline longer than Playwright's 5 s: the suite runs many classes at once on 2 cores.
        await web.ExpectAsync(() => Expect(answer.Locator(".message-body")).ToContainTextAsync("slowly", new() { Timeout = 20_000 }));
        await Expect(answer).ToHaveAttributeAsync("data-status", "streaming");
        await page.GetByRole(AriaRole.Button, new() { Name = "Stop" }).ClickAsync();

        await Expect(answer).ToHaveAttributeAsync("data-status", "cancelled");
        await Expect(answer.Locator(".message-status")).ToHaveTextAsync("Stopped");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send" })).ToBeVisibleAsync();
        using var api = await web.ApiClientAsync(email, password);
        var stored = await LastAnswerAsync(api);
        Assert.Equal("cancelled", stored.GetProperty("status").GetString());
        await page.ReloadAsync();
        await Expect(page.Locator(".message-assistant .message-status")).ToHaveTextAsync("Stopped");
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AReplyKeepsStreamingWhileAnotherConversationIsOpenAndIsShownOnReturn(StoreProvider provider)
    {
        await using var llm = await FakeLlmAsync();
        var reply = string.Join(' ', Enumerable.Range(1, 150).Select(i => $"w{i}"));
        llm.Enqueue(FakeReply.Delayed(FakeReply.Text(reply, chunkSize: 8), TimeSpan.FromMilliseconds(40)));
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => OnFake(api, llm));
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        var first = await page.Locator(".conversation-link[aria-current=page]").GetAttributeAsync("data-id");

        await page.Locator("#composer-input").FillAsync("a long one please");
        await page.Locator("#composer-input").PressAsync("Enter");
        await Expect(page.Locator(".message-assistant .message-body")).ToContainTextAsync("w3");
        await page.GetByRole(AriaRole.Button, new() { Name = "New chat" }).ClickAsync();
        await Expect(page.Locator(".empty-hint")).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send" })).ToBeVisibleAsync();

        await page.Locator($".conversation-link[data-id='{first}']").ClickAsync();
        var answer = page.Locator(".message-assistant").Last;
        await Expect(answer).ToHaveAttributeAsync("data-status", "complete", new() { Timeout = 30_000 });
        using var api = await web.ApiClientAsync(email, password);
        var stored = await LastAnswerAsync(api);
        Assert.Equal(reply, stored.GetProperty("content").GetString());
        Assert.Equal(reply, (await answer.Locator(".message-body").InnerTextAsync()).Trim());
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task RegenerateKeepsTheOldAnswerAsAnAlternative(StoreProvider provider)
    {
        await using var llm = await FakeLlmAsync();
        llm.Enqueue(FakeReply.Text("first answer"));
        llm.Enqueue(FakeReply.Text("title"));
        llm.Enqueue(FakeReply.Text("second answer"));
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => OnFake(api, llm));
        var page = web.Page;
        await web.RegisterAsync();
        var answer = await web.SendAsync("hello");
        await Expect(answer.Locator(".message-body")).ToHaveTextAsync("first answer");
        await Expect(page.Locator("#chat-title")).ToHaveTextAsync("title");

        await answer.GetByRole(AriaRole.Button, new() { Name = "Regenerate" }).ClickAsync();

        var current = page.Locator(".message-assistant").Last;
        await web.ExpectAsync(() => Expect(current.Locator(".message-body")).ToHaveTextAsync("second answer"));
        await web.ExpectAsync(() => Expect(current).ToHaveAttributeAsync("data-status", "complete"));
        await Expect(current.Locator(".alternatives")).ToContainTextAsync("Answer 2 of 2");
        await current.GetByRole(AriaRole.Button, new() { Name = "Previous answer" }).ClickAsync();
        await Expect(current.Locator(".message-body")).ToHaveTextAsync("first answer");
        await Expect(current.Locator(".alternatives")).ToContainTextAsync("Answer 1 of 2");
        await page.ReloadAsync();
        await Expect(page.Locator(".message-assistant .message-body")).ToHaveTextAsync(["second answer"]);
        await Expect(page.Locator(".alternatives")).ToContainTextAsync("Answer 2 of 2");
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task OlderMessagesArriveAPageAtATimeWithTheirStatus(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => api.WithSetting("Chat:RateLimits:MessagesPerMinute", "1000"));
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        for (var i = 1; i <= 30; i++)
        {
            var sent = await api.PostAsJsonAsync("/api/v1/chat/message", new { content = $"note {i}" }, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.OK, sent.StatusCode);
        }

        await page.ReloadAsync();
        await Expect(page.Locator(".message")).ToHaveCountAsync(50);
        await Expect(page.Locator(".message-user .message-body").First).ToHaveTextAsync("note 6");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show older messages" }).ClickAsync();
        await Expect(page.Locator(".message")).ToHaveCountAsync(60);
        await Expect(page.Locator(".message-user .message-body").First).ToHaveTextAsync("note 1");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Show older messages" })).ToBeHiddenAsync();
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ABudgetRefusalIsSaidPlainlyAndTheMessageIsKeptForLater(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => api
            .WithSetting("Billing:Prices:aichat-offline:InputPerMillionUsd", "1000000")
            .WithSetting("Billing:Prices:aichat-offline:OutputPerMillionUsd", "1000000"));
        var page = web.Page;
        await web.RegisterAsync();

        await page.Locator("#composer-input").FillAsync("hello there");
        await page.Locator("#composer-input").PressAsync("Enter");

        await Expect(page.Locator(".notice")).ToContainTextAsync("Your budget for this period is used up");
        var answer = page.Locator(".message-assistant").Last;
        await Expect(answer).ToHaveAttributeAsync("data-status", "failed");
        await Expect(answer.Locator(".message-status")).ToHaveTextAsync("Failed");
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheSessionRefreshesItsTokenBeforeItExpires(StoreProvider provider)
    {
        // A 66 s access token: the client refreshes a minute before it ends, so after about 6 s.
        await using var web = await WebClient.StartAsync(browser, postgres, provider, api => api.WithSetting("Auth:AccessTokenLifetime", "00:01:06"));
        var page = web.Page;
        await web.RegisterAsync();
        var before = await page.EvaluateAsync<string>("() => JSON.parse(localStorage.getItem('aichat.session')).refresh_token");

        var refresh = await page.WaitForResponseAsync(response => response.Url.EndsWith("/api/v1/auth/refresh", StringComparison.Ordinal), new() { Timeout = 30_000 });

        Assert.Equal(200, refresh.Status);
        await Expect(page.Locator("#composer-input")).ToBeVisibleAsync();
        var after = await page.EvaluateAsync<string>("() => JSON.parse(localStorage.getItem('aichat.session')).refresh_token");
        Assert.NotEqual(before, after);
        var answer = await web.SendAsync("my name is Ana");
        await Expect(answer).ToHaveAttributeAsync("data-status", "complete");
        web.AssertNoErrors();
    }

    // This and the next check the page's language and layout, which no store changes: SQLite only, to keep browser time down.
    [Fact]
    public async Task TheClientSpeaksRussianToARussianBrowserAndCanSwitchToEnglish()
    {
        await using var web = await WebClient.StartAsync(browser, postgres, StoreProvider.Sqlite, locale: "ru-RU");
        var page = web.Page;
        await page.GotoAsync("/");
        await Expect(page.Locator("#auth-submit")).ToHaveTextAsync("Войти");
        await Expect(page.Locator("html")).ToHaveAttributeAsync("lang", "ru");
        await web.RegisterAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Новый чат" })).ToBeVisibleAsync();
        await Expect(page.Locator("#offline-notice")).ToContainTextAsync("Офлайн-модель");
        await web.SendAsync("меня зовут Анна");
        await page.GetByRole(AriaRole.Button, new() { Name = "Новый чат" }).ClickAsync();
        await Expect(page.Locator(".empty-hint")).ToBeVisibleAsync();
        var answer = await web.SendAsync("как меня зовут?");
        await Expect(answer.Locator(".message-body")).ToContainTextAsync("Анна");
        await Expect(answer.Locator(".message-author")).ToHaveTextAsync("Ассистент");
        await web.ScreenshotAsync("chat-desktop-ru");

        await page.Locator(".topbar .language-select").SelectOptionAsync("en");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "New chat" })).ToBeVisibleAsync();
        await page.ReloadAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "New chat" })).ToBeVisibleAsync();
        web.AssertNoErrors();
    }

    [Fact]
    public async Task AtPhoneWidthTheChatWorksWithTheKeyboardAlone()
    {
        await using var web = await WebClient.StartAsync(browser, postgres, StoreProvider.Sqlite, width: 360, height: 740);
        var page = web.Page;
        await page.GotoAsync("/");
        await page.Keyboard.PressAsync("Tab");
        // Registration by keyboard: the register tab, then the fields in order.
        await page.Locator("#auth-tab-register").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("#auth-name")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync("Ana");
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("#auth-email")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(Accounts.NewEmail("phone"));
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("#auth-password")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync(Accounts.NewPassword());
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#composer-input")).ToBeFocusedAsync();

        // Shift+Enter is a new line, Enter sends.
        await page.Keyboard.TypeAsync("line one");
        await page.Keyboard.PressAsync("Shift+Enter");
        await page.Keyboard.TypeAsync("line two");
        await Expect(page.Locator("#composer-input")).ToHaveValueAsync("line one\nline two");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator(".message-assistant")).ToHaveAttributeAsync("data-status", "complete");
        Assert.Equal("line one\nline two", (await page.Locator(".message-user .message-body").InnerTextAsync()).Trim());

        // The conversation list is off-canvas at this width, opened by its button.
        await Expect(page.Locator("#sidebar")).Not.ToBeInViewportAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Show conversations" }).ClickAsync();
        await Expect(page.Locator("#sidebar")).ToBeInViewportAsync();
        await Expect(page.Locator("#new-conversation")).ToBeFocusedAsync();
        await web.ScreenshotAsync("chat-360-conversations");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#sidebar")).Not.ToBeInViewportAsync();
        await Expect(page.Locator(".empty-hint")).ToBeVisibleAsync();

        var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
        Assert.Equal(0, overflow);
        await web.ScreenshotAsync("chat-360");
        web.AssertNoErrors();
    }

    private static Task<FakeOpenAi> FakeLlmAsync() => FakeOpenAi.StartAsync(LogSink.Secret("sk-web-" + Guid.NewGuid().ToString("N")));

    /// <summary>The default conversation's newest message, as the API stored it.</summary>
    private static async Task<JsonElement> LastAnswerAsync(HttpClient api) =>
        (await api.GetFromJsonAsync<JsonElement>("/api/v1/chat/history?limit=1", TestContext.Current.CancellationToken)).GetProperty("messages")[0];

    private static void OnFake(ApiFactory api, FakeOpenAi llm) => api
        .WithSetting("Llm:Endpoint", llm.BaseUrl.ToString())
        .WithSetting("Llm:ApiKey", llm.ApiKey)
        .WithSetting("Llm:Model", "gpt-4o-mini")
        .WithSetting("Llm:MaxOutputTokens", "2000");
}
