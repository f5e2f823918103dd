using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace AiChat.Tests.Web;

/// <summary>
/// The web client's memory panel, budget gauge and usage chart in headless Chromium, through the gateway, against the
/// real API on both stores; what the panels show is compared with what the API answers.
/// </summary>
[Collection(BrowserCollection.Name)]
[Trait("Category", "Browser")]
public sealed class PanelTests(Browser browser, PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The offline model is free; a nominal price makes every turn move the budget.
    private static void Priced(ApiFactory api) => api
        .WithSetting("Billing:Prices:aichat-offline:InputPerMillionUsd", "100")
        .WithSetting("Billing:Prices:aichat-offline:OutputPerMillionUsd", "200");

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheMemoryPanelShowsWhatWasLearntWhereAndRevertsIt(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        await web.SendAsync("my name is Ana");
        var conversationId = CurrentConversation(page);
        var title = await TitleOfAsync(web, api, conversationId);

        var dialog = await OpenMemoryAsync(page);
        var human = dialog.Locator(".memory-block[data-label=human]");
        var memory = await api.GetFromJsonAsync<JsonElement>("/api/v1/agent/memory", Ct);
        var block = Block(memory, "human");
        var limit = block.GetProperty("limit").GetInt32();
        Assert.Equal("Name: Ana", block.GetProperty("value").GetString());
        await Expect(human.Locator(".block-name")).ToHaveTextAsync("About you");
        await Expect(human.Locator("textarea")).ToHaveValueAsync("Name: Ana");
        await Expect(human.Locator(".block-counter")).ToHaveTextAsync($"9 / {Number(limit)}");
        await Expect(human.GetByRole(AriaRole.Button, new() { Name = "Save" })).ToBeDisabledAsync();

        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();
        var changes = await api.GetFromJsonAsync<JsonElement>("/api/v1/agent/memory/changes", Ct);
        var learnt = Assert.Single(changes.GetProperty("changes").EnumerateArray());
        Assert.Equal("tool", learnt.GetProperty("source").GetProperty("kind").GetString());
        var entry = dialog.Locator($".change[data-id='{learnt.GetProperty("id").GetGuid()}']");
        await Expect(dialog.Locator(".change")).ToHaveCountAsync(1);
        await Expect(entry.Locator(".change-block")).ToHaveTextAsync("About you");
        await Expect(entry.Locator(".diff-added ins")).ToHaveTextAsync("Name: Ana");
        await Expect(entry.Locator(".diff-removed")).ToHaveCountAsync(0);
        await Expect(entry.Locator(".change-source")).ToHaveTextAsync($"I learnt this in the chat “{title}”.");
        await Expect(entry.Locator("a.conversation-ref")).ToHaveAttributeAsync("href", $"#/c/{conversationId}");
        await web.ScreenshotAsync($"memory-changes-desktop-{provider}");
        await entry.Locator("a.conversation-ref").ClickAsync();
        await Expect(dialog).ToBeHiddenAsync();
        Assert.EndsWith($"#/c/{conversationId}", page.Url);
        await OpenMemoryAsync(page);
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();

        await entry.Locator(".change-revert").ClickAsync();
        await Expect(dialog.Locator(".change")).ToHaveCountAsync(2);
        await Expect(dialog.Locator(".change").First).ToHaveAttributeAsync("data-kind", "revert");
        await Expect(dialog.Locator(".change").First.Locator(".diff-removed del")).ToHaveTextAsync("Name: Ana");
        await Expect(dialog.Locator(".change").First.Locator(".change-source")).ToHaveTextAsync("You reverted an earlier change.");
        Assert.Equal("", await HumanValueAsync(api));
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "Core memory" }).ClickAsync();
        await Expect(human.Locator("textarea")).ToHaveValueAsync("");
        await Expect(human.Locator(".block-counter")).ToHaveTextAsync($"0 / {Number(limit)}");

        // One character over the limit: Save is refused in the page, and the block stays as it was.
        var textarea = human.Locator("textarea");
        await textarea.FillAsync(new string('x', limit + 1));
        await Expect(human.Locator(".block-counter")).ToHaveTextAsync($"{Number(limit + 1)} / {Number(limit)}");
        await Expect(human.Locator(".block-error")).ToHaveTextAsync("1 character over the limit: shorten the text to save it.");
        await Expect(textarea).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(human.GetByRole(AriaRole.Button, new() { Name = "Save" })).ToBeDisabledAsync();
        Assert.Equal("", await HumanValueAsync(api));

        await textarea.FillAsync("Name: Ana\nLikes: green tea");
        await Expect(human.Locator(".block-error")).ToBeHiddenAsync();
        await human.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(human.GetByRole(AriaRole.Button, new() { Name = "Save" })).ToBeDisabledAsync();
        await Expect(page.Locator(".notice").Filter(new() { HasText = "“About you” saved." })).ToBeVisibleAsync();
        Assert.Equal("Name: Ana\nLikes: green tea", await HumanValueAsync(api));
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();
        await Expect(dialog.Locator(".change")).ToHaveCountAsync(3);
        await Expect(dialog.Locator(".change").First.Locator(".change-source")).ToHaveTextAsync("You edited this.");
        await Expect(dialog.Locator(".change").First.Locator(".diff-added ins")).ToHaveTextAsync(["Name: Ana", "Likes: green tea"]);

        await page.ReloadAsync();
        await Expect(page.Locator("#composer-input")).ToBeVisibleAsync();
        dialog = await OpenMemoryAsync(page);
        await Expect(dialog.Locator(".memory-block[data-label=human] textarea")).ToHaveValueAsync("Name: Ana\nLikes: green tea");

        // What was learnt stays when its conversation is deleted; the log says where it came from without a link.
        (await api.DeleteAsync($"/api/v1/conversations/{conversationId}", Ct)).EnsureSuccessStatusCode();
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();
        dialog = await OpenMemoryAsync(page);
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();
        var first = dialog.Locator($".change[data-id='{learnt.GetProperty("id").GetGuid()}']");
        await Expect(first.Locator(".change-source")).ToHaveTextAsync("I learnt this in a deleted conversation.");
        await Expect(first.Locator("a")).ToHaveCountAsync(0);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheChangeLogShowsMoreByItsCursorUntilItEnds(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider);
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        for (var i = 1; i <= 23; i++)
        {
            var saved = await api.PostAsJsonAsync("/api/v1/agent/memory", new { blocks = new[] { new { label = "human", value = $"Fact {i}" } } }, Ct);
            saved.EnsureSuccessStatusCode();
        }

        var dialog = await OpenMemoryAsync(page);
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();
        var changes = dialog.Locator(".change");
        await Expect(changes).ToHaveCountAsync(20);
        await Expect(changes.First.Locator(".diff-added ins")).ToHaveTextAsync("Fact 23");
        await Expect(changes.First.Locator(".diff-removed del")).ToHaveTextAsync("Fact 22");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Show more" }).ClickAsync();
        await Expect(changes).ToHaveCountAsync(23);
        await Expect(changes.Last.Locator(".diff-added ins")).ToHaveTextAsync("Fact 1");
        await Expect(changes.Last.Locator(".diff-removed")).ToHaveCountAsync(0);
        await Expect(dialog.GetByRole(AriaRole.Button, new() { Name = "Show more" })).ToBeHiddenAsync();
        await Expect(changes.Locator(".change-source").Filter(new() { HasText = "You edited this." })).ToHaveCountAsync(23);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ArchivalNotesAreListedFoundAndDeleted(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        await web.SendAsync("remember that my cat is Tom");
        await web.SendAsync("remember that I drink green tea");

        var dialog = await OpenMemoryAsync(page);
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "Long-term notes" }).ClickAsync();
        var passages = dialog.Locator(".passage");
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("2 notes");
        await Expect(passages.Locator(".passage-content")).ToHaveTextAsync(["I drink green tea", "my cat is Tom"]);

        var search = dialog.GetByRole(AriaRole.Searchbox, new() { Name = "Search the notes" });
        await search.FillAsync("cat");
        await search.PressAsync("Enter");
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("1 note for “cat”");
        await Expect(passages.Locator(".passage-content")).ToHaveTextAsync(["my cat is Tom"]);
        await search.FillAsync("zebra");
        await search.PressAsync("Enter");
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("No note matches “zebra”.");
        await Expect(passages).ToHaveCountAsync(0);
        await search.FillAsync("cat");
        await search.PressAsync("Enter");
        await Expect(passages).ToHaveCountAsync(1);

        // Delete asks first: cancelling keeps the note; confirming removes it.
        var cat = passages.Filter(new() { HasText = "my cat is Tom" });
        await cat.GetByRole(AriaRole.Button, new() { Name = "Delete the note “my cat is Tom”" }).ClickAsync();
        var confirm = page.Locator("#confirm-dialog");
        await Expect(confirm).ToBeVisibleAsync();
        await Expect(confirm.Locator("#confirm-text")).ToHaveTextAsync("Delete this note for good? “my cat is Tom”");
        await confirm.GetByRole(AriaRole.Button, new() { Name = "Cancel" }).ClickAsync();
        await Expect(confirm).ToBeHiddenAsync();
        Assert.Equal(2, await PassageCountAsync(api));
        await cat.GetByRole(AriaRole.Button, new() { Name = "Delete the note “my cat is Tom”" }).ClickAsync();
        await confirm.GetByRole(AriaRole.Button, new() { Name = "Confirm" }).ClickAsync();
        await Expect(page.Locator(".notice").Filter(new() { HasText = "Note deleted." })).ToBeVisibleAsync();
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("No note matches “cat”.");
        Assert.Equal(1, await PassageCountAsync(api));

        await dialog.GetByRole(AriaRole.Button, new() { Name = "Close" }).ClickAsync();
        await Expect(dialog).ToBeHiddenAsync();
        dialog = await OpenMemoryAsync(page);
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "Long-term notes" }).ClickAsync();
        await search.FillAsync("");
        await search.PressAsync("Enter");
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("1 note");
        await Expect(passages.Locator(".passage-content")).ToHaveTextAsync(["I drink green tea"]);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheGaugeGoesUpByWhatATurnCostsAndTheChartHasTodayAndTheModel(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        var meter = page.Locator("#budget-gauge [role=meter]");
        var fresh = await BudgetAsync(api);
        Assert.Equal(0m, fresh.GetProperty("spent_usd").GetDecimal());
        await Expect(meter).ToHaveAttributeAsync("aria-valuetext", GaugeText(fresh));
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync("$10.00 left");

        // The first turn of a conversation is followed by its (billed) title call: measure from after it.
        await web.SendAsync("hello there");
        var conversationId = CurrentConversation(page);
        await TitleOfAsync(web, api, conversationId);
        var before = await BudgetAsync(api);
        Assert.True(before.GetProperty("spent_usd").GetDecimal() > 0m);
        await Expect(meter).ToHaveAttributeAsync("aria-valuetext", GaugeText(before));

        await web.SendAsync("what is my name?");
        var after = await BudgetAsync(api);
        var messages = await api.GetFromJsonAsync<JsonElement>($"/api/v1/conversations/{conversationId}/messages?limit=1", Ct);
        var cost = messages.GetProperty("messages")[0].GetProperty("usage").GetProperty("cost_usd").GetDecimal();
        Assert.True(cost > 0m);
        Assert.Equal(before.GetProperty("spent_usd").GetDecimal() + cost, after.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, after.GetProperty("reserved_usd").GetDecimal());
        await Expect(meter).ToHaveAttributeAsync("aria-valuetext", GaugeText(after));
        await Expect(meter).ToHaveAttributeAsync("aria-valuemax", "10");
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync($"{Floor(after.GetProperty("remaining_usd").GetDecimal()).ToString("$#,##0.00", CultureInfo.InvariantCulture)} left");

        await page.Locator(".gauge-button").ClickAsync();
        var dialog = page.Locator("#budget-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        await Expect(dialog.Locator("#budget-spent")).ToHaveTextAsync(Usd(after.GetProperty("spent_usd").GetDecimal()));
        await Expect(dialog.Locator("#budget-reserved")).ToHaveTextAsync("$0.00");
        await Expect(dialog.Locator("#budget-remaining")).ToHaveTextAsync(Usd(after.GetProperty("remaining_usd").GetDecimal()));
        await Expect(dialog.Locator("#budget-limit")).ToHaveTextAsync("$10.00 per month");
        await Expect(dialog.Locator("#budget-resets")).ToHaveTextAsync(
            after.GetProperty("resets_at").GetDateTimeOffset().ToLocalTime().ToString("MMM d, yyyy", CultureInfo.GetCultureInfo("en-US")));

        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var byDay = await api.GetFromJsonAsync<JsonElement>("/api/v1/user/usage?group_by=day", Ct);
        var day = Assert.Single(byDay.GetProperty("series").EnumerateArray());
        Assert.Equal(today, day.GetProperty("key").GetString());
        Assert.Equal(after.GetProperty("spent_usd").GetDecimal(), day.GetProperty("cost_usd").GetDecimal());
        var dayBars = dialog.Locator(".usage-chart[data-group=day] rect.chart-bar");
        await Expect(dayBars).ToHaveCountAsync(30);
        await Expect(dayBars.Last).ToHaveAttributeAsync("data-key", today);
        await Expect(dialog.Locator(".usage-chart[data-group=day] rect.chart-bar:not([height='0.00'])")).ToHaveCountAsync(1);
        await Expect(dayBars.Last.Locator("title")).ToHaveTextAsync(new Regex($"^[A-Z][a-z]{{2}} \\d{{1,2}}: {Regex.Escape(Usd(day.GetProperty("cost_usd").GetDecimal()))}, {day.GetProperty("calls").GetInt64()} model calls, "));
        var modelBars = dialog.Locator(".usage-chart[data-group=model] rect.chart-bar");
        await Expect(modelBars).ToHaveCountAsync(1);
        await Expect(modelBars).ToHaveAttributeAsync("data-key", "aichat-offline");
        await Expect(dialog.Locator(".usage-chart[data-group=model] .chart-value")).ToHaveTextAsync(Usd(day.GetProperty("cost_usd").GetDecimal()));

        // The text alternative: a table per chart, with the same figures.
        await dialog.Locator(".usage-chart[data-group=day] summary").ClickAsync();
        var row = dialog.Locator($".usage-chart[data-group=day] tr[data-key='{today}']");
        await Expect(row.Locator("td").First).ToHaveTextAsync(Usd(day.GetProperty("cost_usd").GetDecimal()));
        await Expect(dialog.Locator(".usage-totals")).ToContainTextAsync($"{Usd(day.GetProperty("cost_usd").GetDecimal())} for {day.GetProperty("calls").GetInt64()} model calls");
        await web.ScreenshotAsync($"budget-desktop-{provider}");
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task APersonalLimitAboveTheGrantIsRefusedPlainlyAndOneBelowIsKept(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        var (email, password) = await web.RegisterAsync();
        using var api = await web.ApiClientAsync(email, password);
        await page.Locator(".gauge-button").ClickAsync();
        var dialog = page.Locator("#budget-dialog");
        var field = dialog.GetByLabel("Personal limit in USD");
        await Expect(dialog.Locator("#budget-personal-state")).ToHaveTextAsync("You may spend all of your budget of $10.00 per month. Set a lower limit to spend less.");

        await field.FillAsync("50");
        await field.PressAsync("Enter");
        await Expect(dialog.Locator("#budget-personal-error")).ToHaveTextAsync("That is more than your budget of $10.00. Only an administrator can raise the budget.");
        Assert.Equal(JsonValueKind.Null, (await BudgetAsync(api)).GetProperty("personal_limit_usd").ValueKind);

        await field.FillAsync("two dollars");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Set limit" }).ClickAsync();
        await Expect(dialog.Locator("#budget-personal-error")).ToHaveTextAsync("Enter an amount in dollars, such as 2.50.");

        await field.FillAsync("2.5");
        await dialog.GetByRole(AriaRole.Button, new() { Name = "Set limit" }).ClickAsync();
        await Expect(dialog.Locator("#budget-personal-error")).ToBeHiddenAsync();
        await Expect(dialog.Locator("#budget-limit")).ToHaveTextAsync("$2.50 per month");
        await Expect(dialog.Locator("#budget-personal-state")).ToHaveTextAsync("You have limited yourself to $2.50 (your budget is $10.00 per month).");
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync("$2.50 left");
        Assert.Equal(2.5m, (await BudgetAsync(api)).GetProperty("personal_limit_usd").GetDecimal());

        await dialog.GetByRole(AriaRole.Button, new() { Name = "Remove limit" }).ClickAsync();
        await Expect(dialog.Locator("#budget-limit")).ToHaveTextAsync("$10.00 per month");
        await Expect(dialog.GetByRole(AriaRole.Button, new() { Name = "Remove limit" })).ToBeDisabledAsync();
        Assert.Equal(JsonValueKind.Null, (await BudgetAsync(api)).GetProperty("personal_limit_usd").ValueKind);
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ThePanelsFillA360PixelScreenAndWorkWithTheKeyboard(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        await web.RegisterAsync(); // at desktop width: the helper waits for the conversation list, off-canvas at 360 px
        await page.SetViewportSizeAsync(360, 740);
        await web.SendAsync("my name is Ana");
        await web.SendAsync("remember that my cat is Tom");

        await Expect(page.Locator(".gauge-button")).ToBeVisibleAsync();
        await web.ScreenshotAsync($"gauge-360-{provider}");

        // Keyboard only: the button opens the panel with the focus on its first tab; arrows move between the tabs.
        await page.Locator("#memory-button").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var dialog = page.Locator("#memory-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        await Expect(dialog.GetByRole(AriaRole.Tab, new() { Name = "Core memory" })).ToBeFocusedAsync();
        await Expect(dialog.Locator(".memory-block[data-label=human] textarea")).ToHaveValueAsync("Name: Ana");
        await AssertFillsTheScreenAsync(dialog, page);
        await web.ScreenshotAsync($"memory-360-{provider}");
        await page.Keyboard.PressAsync("ArrowRight");
        await Expect(dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" })).ToBeFocusedAsync();
        await Expect(dialog.GetByRole(AriaRole.Tabpanel, new() { Name = "What I learnt" })).ToBeVisibleAsync();
        await Expect(dialog.Locator(".change")).ToHaveCountAsync(1);
        await AssertNoSidewaysScrollAsync(dialog);
        await web.ScreenshotAsync($"memory-changes-360-{provider}");
        await page.Keyboard.PressAsync("ArrowRight");
        await Expect(dialog.Locator(".passage")).ToHaveCountAsync(1);
        await AssertNoSidewaysScrollAsync(dialog);
        await web.ScreenshotAsync($"memory-archival-360-{provider}");
        await page.Keyboard.PressAsync("Tab");
        await Expect(dialog.GetByRole(AriaRole.Searchbox, new() { Name = "Search the notes" })).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Escape");
        await Expect(dialog).ToBeHiddenAsync();
        await Expect(page.Locator("#memory-button")).ToBeFocusedAsync();

        // The gauge's button, by Tab from the memory button's left neighbour, opens the budget dialog.
        var gaugeButton = page.Locator(".gauge-button");
        await gaugeButton.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var budget = page.Locator("#budget-dialog");
        await Expect(budget).ToBeVisibleAsync();
        await Expect(budget.Locator(".usage-chart[data-group=day] rect.chart-bar")).ToHaveCountAsync(30);
        await AssertFillsTheScreenAsync(budget, page);
        await AssertNoSidewaysScrollAsync(budget);
        var chartWidth = await budget.Locator(".chart-days").EvaluateAsync<double>("chart => chart.getBoundingClientRect().width");
        Assert.InRange(chartWidth, 240, 360);
        await web.ScreenshotAsync($"budget-360-{provider}");
        await budget.Locator(".usage-chart[data-group=model]").ScrollIntoViewIfNeededAsync();
        await web.ScreenshotAsync($"budget-chart-360-{provider}");
        await budget.Locator(".personal-limit input").FocusAsync();
        await Expect(budget.GetByLabel("Personal limit in USD")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Tab");
        await Expect(budget.GetByRole(AriaRole.Button, new() { Name = "Set limit" })).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Escape");
        await Expect(budget).ToBeHiddenAsync();
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task ThePanelsSpeakRussianAndSwitchLanguageInPlace(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced, locale: "ru-RU");
        var page = web.Page;
        await page.GotoAsync("/");
        await page.Locator("#auth-tab-register").ClickAsync();
        await page.Locator("#auth-email").FillAsync(Accounts.NewEmail("web"));
        await page.Locator("#auth-password").FillAsync(Accounts.NewPassword());
        await page.Locator("#auth-submit").ClickAsync();
        await Expect(page.Locator("#composer-input")).ToBeVisibleAsync();
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync("осталось 10,00 $");

        await page.Locator("#memory-button").ClickAsync();
        var dialog = page.Locator("#memory-dialog");
        await Expect(dialog.Locator("#memory-title")).ToHaveTextAsync("Что я о вас знаю");
        await Expect(dialog.GetByRole(AriaRole.Tab)).ToHaveTextAsync(["Основная память", "Что я узнал", "Долгие заметки"]);
        await Expect(dialog.Locator(".memory-block[data-label=human] .block-name")).ToHaveTextAsync("О вас");
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "Что я узнал" }).ClickAsync();
        await Expect(dialog.Locator("#memory-section-changes .empty")).ToHaveTextAsync("Пока ничего не менялось.");
        await page.Keyboard.PressAsync("Escape");

        await page.Locator(".gauge-button").ClickAsync();
        var budget = page.Locator("#budget-dialog");
        await Expect(budget.Locator("#budget-title")).ToHaveTextAsync("Бюджет и расходы");
        await Expect(budget.Locator("h3")).ToHaveTextAsync(["Текущий период", "Ваш собственный лимит", "Расходы за последние 30 дней"]);
        await Expect(budget.Locator("#budget-limit")).ToHaveTextAsync("10,00 $ в месяц");
        await Expect(budget.Locator(".usage-chart[data-group=day] figcaption")).ToHaveTextAsync("Расходы по дням (UTC)");
        await web.ScreenshotAsync($"budget-ru-{provider}");
        await page.Keyboard.PressAsync("Escape");

        // Switching the language re-renders what the panels drew themselves, not only the marked-up labels.
        await page.Locator("#app-view .language-select").SelectOptionAsync("en");
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync("$10.00 left");
        await page.Locator("#memory-button").ClickAsync();
        await Expect(dialog.GetByRole(AriaRole.Tab)).ToHaveTextAsync(["Core memory", "What I learnt", "Long-term notes"]);
        await Expect(dialog.Locator("#memory-section-changes .empty")).ToHaveTextAsync("Nothing has changed yet.");
        web.AssertNoErrors();
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AfterSignOutTheNextUserSeesNoneOfThePreviousUsersMemoryOrBudget(StoreProvider provider)
    {
        await using var web = await WebClient.StartAsync(browser, postgres, provider, Priced);
        var page = web.Page;
        await web.RegisterAsync();
        await web.SendAsync("my name is Ana");
        await web.SendAsync("remember that my cat is Tom");
        var dialog = await OpenMemoryAsync(page);
        await Expect(dialog.Locator(".memory-block[data-label=human] textarea")).ToHaveValueAsync("Name: Ana");
        await page.Keyboard.PressAsync("Escape");
        await page.Locator(".gauge-button").ClickAsync();
        await Expect(page.Locator("#budget-dialog .usage-chart[data-group=model] rect.chart-bar")).ToHaveCountAsync(1);
        await page.Keyboard.PressAsync("Escape");

        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Expect(page.Locator("#auth-view")).ToBeVisibleAsync();
        await Expect(page.Locator("#memory-body .memory-block")).ToHaveCountAsync(0);
        await Expect(page.Locator("#memory-body .change")).ToHaveCountAsync(0);
        await Expect(page.Locator("#memory-body .passage")).ToHaveCountAsync(0);
        await Expect(page.Locator("#budget-body .chart-bar")).ToHaveCountAsync(0);
        await Expect(page.Locator("#budget-body")).Not.ToContainTextAsync("$");
        await Expect(page.Locator("#budget-gauge .gauge")).ToBeHiddenAsync();

        // The next user signs in on the same page (no reload): the panels load their own data only.
        await page.Locator("#auth-tab-register").ClickAsync();
        await page.Locator("#auth-email").FillAsync(Accounts.NewEmail("web"));
        await page.Locator("#auth-password").FillAsync(Accounts.NewPassword());
        await page.Locator("#auth-submit").ClickAsync();
        await Expect(page.Locator(".gauge-button")).ToHaveTextAsync("$10.00 left");
        dialog = await OpenMemoryAsync(page);
        await Expect(dialog.Locator(".memory-block[data-label=human] textarea")).ToHaveValueAsync("");
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "What I learnt" }).ClickAsync();
        await Expect(dialog.Locator("#memory-section-changes .empty")).ToHaveTextAsync("Nothing has changed yet.");
        await dialog.GetByRole(AriaRole.Tab, new() { Name = "Long-term notes" }).ClickAsync();
        await Expect(dialog.Locator(".archival-count")).ToHaveTextAsync("No notes yet. Say “remember that …” in a chat.");
        web.AssertNoErrors();
    }

    private static async Task<ILocator> OpenMemoryAsync(IPage page)
    {
        await page.Locator("#memory-button").ClickAsync();
        var dialog = page.Locator("#memory-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        return dialog;
    }

    private static Guid CurrentConversation(IPage page) =>
        Guid.Parse(Regex.Match(page.Url, "#/c/(?<id>[0-9a-f-]{36})$").Groups["id"].Value);

    /// <summary>The conversation's title once the page shows the one generated after its first turn.</summary>
    private static async Task<string> TitleOfAsync(WebClient web, HttpClient api, Guid conversationId)
    {
        await Expect(web.Page.Locator("#chat-title")).Not.ToHaveTextAsync("New conversation", new() { Timeout = 20_000 });
        var conversation = await api.GetFromJsonAsync<JsonElement>($"/api/v1/conversations/{conversationId}", Ct);
        var title = conversation.GetProperty("title").GetString();
        Assert.False(string.IsNullOrEmpty(title));
        await Expect(web.Page.Locator("#chat-title")).ToHaveTextAsync(title!);
        return title!;
    }

    private static JsonElement Block(JsonElement memory, string label) =>
        memory.GetProperty("blocks").EnumerateArray().Single(b => b.GetProperty("label").GetString() == label);

    private static async Task<string?> HumanValueAsync(HttpClient api) =>
        Block(await api.GetFromJsonAsync<JsonElement>("/api/v1/agent/memory", Ct), "human").GetProperty("value").GetString();

    private static async Task<int> PassageCountAsync(HttpClient api) =>
        (await api.GetFromJsonAsync<JsonElement>("/api/v1/agent/memory/archival", Ct)).GetProperty("count").GetInt32();

    private static async Task<JsonElement> BudgetAsync(HttpClient api) => await api.GetFromJsonAsync<JsonElement>("/api/v1/user/budget", Ct);

    private static string GaugeText(JsonElement budget) =>
        $"{Usd(budget.GetProperty("spent_usd").GetDecimal())} spent and {Usd(budget.GetProperty("reserved_usd").GetDecimal())} reserved "
        + $"of {Usd(budget.GetProperty("effective_limit_usd").GetDecimal())}; {Usd(budget.GetProperty("remaining_usd").GetDecimal())} left";

    /// <summary>How the page writes an amount in en-US: at least two decimals, up to six (nine below a hundredth of a cent).</summary>
    private static string Usd(decimal value) =>
        value.ToString(value != 0 && Math.Abs(value) < 0.0001m ? "$#,##0.00#######" : "$#,##0.00####", CultureInfo.InvariantCulture);

    private static decimal Floor(decimal value) => Math.Floor(value * 100) / 100;

    private static string Number(int value) => value.ToString("N0", CultureInfo.GetCultureInfo("en-US"));

    private static async Task AssertFillsTheScreenAsync(ILocator dialog, IPage page)
    {
        var box = await dialog.BoundingBoxAsync();
        Assert.NotNull(box);
        Assert.Equal(0, box.X);
        Assert.Equal(0, box.Y);
        Assert.Equal(page.ViewportSize!.Width, box.Width);
        Assert.Equal(page.ViewportSize!.Height, box.Height);
    }

    private static async Task AssertNoSidewaysScrollAsync(ILocator dialog) =>
        Assert.True(await dialog.EvaluateAsync<bool>("d => d.scrollWidth <= d.clientWidth"), "the dialog scrolls sideways");
}
