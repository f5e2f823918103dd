using System.Diagnostics;
using System.Net;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Clients;

/// <summary>
/// The official <c>openai</c> npm package (pinned in <c>OpenAiSdk/package-lock.json</c>, installed with <c>npm ci</c>)
/// against the gateway's <c>/v1</c>, as a stateless client that resends the whole history: a completion, a streamed one
/// with its usage chunk, the history resent (stored once), the agent's memory in a new chat, and a budget refusal raised
/// by the SDK as OpenAI's <c>insufficient_quota</c>. On SQLite and Postgres; node is a prerequisite.
/// </summary>
[Trait("Category", "Clients")]
public sealed class OpenAiSdkTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TheOpenAiSdkTalksToTheUsersAgentThroughTheGateway(StoreProvider provider)
    {
        var sdk = await OpenAiSdk.InstallAsync();
        var api = new ApiFactory()
            // A nominal price, so a budget of zero refuses the call.
            .WithSetting("Billing:Prices:aichat-offline:InputPerMillionUsd", "0.01")
            .WithSetting("Billing:Prices:aichat-offline:OutputPerMillionUsd", "0.01");
        await using var system = RunningSystem.Start(provider == StoreProvider.Postgres ? api.WithPostgres(await postgres.CreateDatabaseAsync()) : api);
        using var client = system.GatewayClient();
        var pair = await client.RegisterAsync();
        var poor = await client.RegisterAsync();
        var key = await ApiKeys.CreateAsync(client, pair.AccessToken, "sdk");
        var poorKey = await ApiKeys.CreateAsync(client, poor.AccessToken, "sdk");
        Assert.Equal(HttpStatusCode.OK, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/user/budget", poor.AccessToken, new { personal_limit_usd = 0 })).StatusCode);

        var seen = await sdk.RunAsync("check.mjs", new()
        {
            ["AICHAT_BASE_URL"] = new Uri(system.GatewayAddress, "/v1").ToString(),
            ["AICHAT_MODEL"] = "aichat-offline",
            ["AICHAT_KEY"] = key.Key,
            ["AICHAT_POOR_KEY"] = poorKey.Key,
        });

        Assert.Contains("aichat-offline", seen.GetProperty("models").EnumerateArray().Select(m => m.GetString()));

        var first = seen.GetProperty("first");
        Assert.Equal("[offline model] Got it. I've noted \"Name: Ana\" in my memory.", first.GetProperty("content").GetString());
        Assert.Equal("stop", first.GetProperty("finish_reason").GetString());
        Assert.True(first.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);
        var conversation = first.GetProperty("conversation").GetGuid();

        var second = seen.GetProperty("second");
        Assert.Equal("[offline model] Your name is Ana. I have it in my memory.", second.GetProperty("content").GetString());
        Assert.Equal("stop", second.GetProperty("finish_reason").GetString());
        var usage = second.GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.True(second.GetProperty("chunks").GetInt32() >= 4, "role, text, finish and usage chunks");
        Assert.Equal(conversation, second.GetProperty("conversation").GetGuid());
        Assert.Equal(conversation, seen.GetProperty("third").GetProperty("conversation").GetGuid());

        // The history was sent three times and is stored once, in one conversation.
        var stored = await HistoryAsync(client, pair.AccessToken, conversation);
        Assert.Equal(
            ["user: my name is Ana", $"assistant: {first.GetProperty("content").GetString()}", "user: what is my name?", $"assistant: {second.GetProperty("content").GetString()}",
             "user: I like green tea", $"assistant: {seen.GetProperty("third").GetProperty("content").GetString()}"],
            stored);

        // A new chat is a new conversation; the agent's memory knows the name there too.
        var fresh = seen.GetProperty("fresh");
        Assert.NotEqual(conversation, fresh.GetProperty("conversation").GetGuid());
        Assert.Equal(second.GetProperty("content").GetString(), fresh.GetProperty("content").GetString());
        Assert.Equal(8, await Conversations.CountAsync(system.Api, "SELECT COUNT(*) FROM messages WHERE user_id = @userId", new { userId = pair.UserId }));

        foreach (var name in new[] { "budget", "budget_streamed" })
        {
            var refusal = seen.GetProperty(name);
            Assert.True(refusal.GetProperty("raised").GetBoolean(), name);
            Assert.True(refusal.GetProperty("is_api_error").GetBoolean(), name);
            Assert.Equal(402, refusal.GetProperty("status").GetInt32());
            Assert.Equal("insufficient_quota", refusal.GetProperty("code").GetString());
            Assert.Equal("insufficient_quota", refusal.GetProperty("type").GetString());
        }

        var unknown = seen.GetProperty("unknown_model");
        Assert.Equal("NotFoundError", unknown.GetProperty("name").GetString());
        Assert.Equal("model_not_found", unknown.GetProperty("code").GetString());
    }

    internal static async Task<List<string>> HistoryAsync(HttpClient client, string accessToken, Guid conversation)
    {
        var page = JsonDocument.Parse(await (await client.GetWithTokenAsync($"/api/v1/conversations/{conversation}/messages?limit=50", accessToken)).Content.ReadAsStringAsync(Ct));
        return page.RootElement.GetProperty("messages").EnumerateArray().Reverse()
            .Select(m => $"{m.GetProperty("role").GetString()}: {m.GetProperty("content").GetString()}").ToList();
    }
}

/// <summary>The pinned OpenAI SDK beside the tests: <c>npm ci</c> once per run, then node scripts that print one JSON object.</summary>
public sealed class OpenAiSdk
{
    private static readonly SemaphoreSlim Install = new(1, 1);
    private static bool _installed;

    private OpenAiSdk(string folder) => Folder = folder;

    public string Folder { get; }

    public static async Task<OpenAiSdk> InstallAsync()
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "OpenAiSdk");
        if (Which("node") is null || Which("npm") is null)
        {
            Prerequisite.Missing("node and npm (apt-get install nodejs npm), for the OpenAI SDK tests");
        }

        await Install.WaitAsync(Ct);
        try
        {
            if (!_installed)
            {
                var (code, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], folder, new(), TimeSpan.FromMinutes(3));
                Assert.True(code == 0, $"npm ci: {output}");
                _installed = true;
            }
        }
        finally
        {
            Install.Release();
        }

        return new OpenAiSdk(folder);
    }

    public async Task<JsonElement> RunAsync(string script, Dictionary<string, string> environment)
    {
        var (code, output) = await RunAsync("node", [script], Folder, environment, TimeSpan.FromMinutes(2));
        Assert.True(code == 0, $"node {script} exited {code}: {output}");
        var json = output.Split('\n').Last(line => line.StartsWith('{'));
        return JsonDocument.Parse(json).RootElement;
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] arguments, string folder, Dictionary<string, string> environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static string? Which(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, command))
            .FirstOrDefault(File.Exists);
}
