using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace AiChat.Tests.Web;

/// <summary>The web client in headless Chromium, through the gateway, against the real API on both stores.</summary>
[Trait("Category", "Browser")]
public sealed class WebClientTests(Browser browser, PostgresServer postgres)
{
    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task WhatYouTellItInOneChatItKnowsInAnother(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider);
        var page = web.Page;
        await web.RegisterAsync();

        var first = await web.SendAsync("my name is Ana");
        await Expect(first).ToHaveAttributeAsync("data-status", "complete");

        await page.GetByRole(AriaRole.Button, new() { Name = "New chat" }).ClickAsync();
        await Expect(page.Locator(".empty-hint")).ToBeVisibleAsync();
        var answer = await web.SendAsync("what is my name?");
        await Expect(answer.Locator(".message-body")).ToContainTextAsync("Ana");

        await web.ScreenshotAsync($"chat-desktop-{provider}");
        web.AssertNoErrors();
    }
}
