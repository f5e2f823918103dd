using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiChat.Api.Data;
using AiChat.Api.Llm;
using AiChat.Api.Users;
using AiChat.Tests.Chat;
using AiChat.Tests.Fakes;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace AiChat.Tests.Proof;

/// <summary>
/// The secret scan, on SQLite and Postgres: the whole system (gateway, API, LiteLLM fake) logging at Trace with scopes,
/// register / login / refresh / chat / admin flows through the gateway, then every response (status, headers, body)
/// and every captured log line of the API and the gateway is searched for every secret of the run. A token may appear
/// only in the answer that issued it; a password, a password hash, the signing key, the internal LLM secret and keys,
/// and a LiteLLM key appear nowhere.
/// </summary>
[Trait("Category", "Proof")]
public sealed class SecretScanTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] TraceEverywhere =
        ["Default", "Microsoft", "Microsoft.AspNetCore", "Microsoft.Hosting.Lifetime", "System.Net.Http.HttpClient", "Polly", "Npgsql", "Yarp"];

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task NoResponseAndNoLogLineOfTheApiOrTheGatewayHoldsASecret(StoreProvider provider)
    {
        await using var liteLlm = await FakeLiteLlm.StartAsync(LogSink.Secret("sk-master-" + Guid.NewGuid().ToString("N")));
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signingPem = signing.ExportPkcs8PrivateKeyPem();
        var internalSecret = LogSink.Secret("internal-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)));
        var api = new ApiFactory()
            .WithSetting("LiteLlm:BaseUrl", liteLlm.Url.ToString())
            .WithSetting("LiteLlm:MasterKey", liteLlm.MasterKey)
            .WithSetting("Llm:Endpoint", new Uri(liteLlm.Url, "/v1").ToString())
            .WithSetting("Llm:Model", "gpt-4o-mini")
            .WithSetting("Llm:MaxOutputTokens", "200")
            .WithSetting("Auth:SigningKeyPem", signingPem)
            .WithSetting("InternalLlm:Secret", internalSecret);
        foreach (var category in TraceEverywhere)
        {
            api.WithSetting($"Logging:LogLevel:{category}", "Trace");
        }

        if (provider == StoreProvider.Postgres)
        {
            api.WithPostgres(await postgres.CreateDatabaseAsync());
        }

        var firstLine = LogSink.AllLines.Count;
        await using var system = RunningSystem.Start(api, gateway =>
        {
            foreach (var category in TraceEverywhere)
            {
                gateway.WithSetting($"Logging:LogLevel:{category}", "Trace");
            }
        });
        var recorder = new Recorder(new SocketsHttpHandler());
        using var client = new HttpClient(recorder) { BaseAddress = system.GatewayAddress, Timeout = TimeSpan.FromSeconds(60) };

        var passwords = new[] { Accounts.NewPassword(), Accounts.NewPassword(), Accounts.NewPassword() };
        var ownerEmail = Accounts.NewEmail("owner");
        var adminEmail = Accounts.NewEmail("admin");
        var owner = await client.RegisterAsync(ownerEmail, passwords[0]);
        var other = await client.RegisterAsync(password: passwords[1]);
        var admin = await client.RegisterAsync(adminEmail, passwords[2]);
        Assert.IsType<GrantOutcome.Granted>(await api.Services.GetRequiredService<AdminGrants>().BootstrapAsync(adminEmail, Ct));

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/v1/auth/login", new { email = ownerEmail, password = passwords[1] }, Ct)).StatusCode);
        var loggedIn = await client.LoginAsync(ownerEmail, passwords[0]);
        var refreshed = await Accounts.ReadPairAsync(await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = loggedIn.RefreshToken }, Ct));

        // A second session whose used refresh token is replayed: refused, and that session is revoked.
        var second = await client.LoginAsync(ownerEmail, passwords[0]);
        await Accounts.ReadPairAsync(await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = second.RefreshToken }, Ct));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.PostAsJsonAsync("/api/v1/auth/refresh", new { refresh_token = second.RefreshToken }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/auth/me", refreshed.AccessToken)).StatusCode);

        var conversation = await Conversations.CreateIdAsync(client, refreshed.AccessToken, "Secrets");
        await Conversations.AnswerAsync(client, refreshed.AccessToken, conversation, "my name is Ana");
        using (var stream = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/message") { Content = JsonContent.Create(new { content = "what is my name?" }) })
        {
            stream.Headers.Authorization = new AuthenticationHeaderValue("Bearer", refreshed.AccessToken);
            stream.Headers.Accept.ParseAdd("text/event-stream");
            var streamed = await client.SendAsync(stream, Ct);
            Assert.Contains("event: turn.completed", await streamed.Content.ReadAsStringAsync(Ct));
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/chat/history", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/user/export", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/user/budget", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/admin/users", admin.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.SendWithTokenAsync(HttpMethod.Put, $"/api/v1/admin/users/{owner.UserId}/budget", admin.AccessToken, new { max_budget_usd = 25m })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync($"/api/v1/admin/users/{owner.UserId}/budget", admin.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.SendWithTokenAsync(HttpMethod.Post, $"/api/v1/admin/users/{other.UserId}/admin", admin.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetWithTokenAsync("/api/v1/admin/grants", other.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetWithTokenAsync("/api/v1/admin/users", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.SendWithTokenAsync(HttpMethod.Post, "/api/v1/auth/logout", refreshed.AccessToken)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetWithTokenAsync("/api/v1/auth/me", refreshed.AccessToken)).StatusCode);
        await client.GetAsync("/.well-known/jwks.json", Ct);

        var secrets = new Dictionary<string, string>(StringComparer.Ordinal);
        void Secret(string what, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                secrets.TryAdd(LogSink.Secret(value), what);
            }
        }

        for (var i = 0; i < passwords.Length; i++)
        {
            Secret($"password {i}", passwords[i]);
        }

        var db = api.Services.GetRequiredService<AiChatDb>();
        await using (var connection = await db.OpenAsync(Ct))
        {
            foreach (var hash in await connection.QueryAsync<string>("SELECT password_hash FROM users WHERE password_hash IS NOT NULL"))
            {
                Secret("a password hash", hash);
            }

            foreach (var key in await connection.QueryAsync<string>("SELECT litellm_key_protected FROM billing_accounts WHERE litellm_key_protected IS NOT NULL"))
            {
                Secret("a LiteLLM key as stored", key);
            }

            foreach (var hash in await connection.QueryAsync<string>("SELECT token_hash FROM refresh_tokens"))
            {
                Secret("a refresh token hash", hash);
            }
        }

        foreach (var line in signingPem.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal)))
        {
            Secret("the signing key", line.Trim());
        }

        Secret("the signing key's private scalar", Base64UrlEncoder.Encode(signing.ExportParameters(includePrivateParameters: true).D!));
        Secret("the internal LLM secret", internalSecret);
        var internalKeys = api.Services.GetRequiredService<IInternalLlmKeys>();
        foreach (var user in new[] { owner, other, admin })
        {
            Secret("an internal LLM key", internalKeys.KeyFor(user.UserId));
        }

        Secret("the LiteLLM master key", liteLlm.MasterKey);
        foreach (var key in liteLlm.Keys)
        {
            Secret("a LiteLLM virtual key", key.Raw);
        }

        Assert.True(liteLlm.Keys.Count >= 3, "every account has a LiteLLM key");

        // Tokens: each is allowed in the one answer that issued it.
        var issuedIn = new Dictionary<string, int>(StringComparer.Ordinal);
        var responses = recorder.Responses;
        for (var i = 0; i < responses.Count; i++)
        {
            foreach (var token in TokensIn(responses[i].Body))
            {
                issuedIn.TryAdd(token, i);
                Secret("a token", token);
            }
        }

        Assert.True(issuedIn.Count >= 10, $"{issuedIn.Count} tokens issued");
        var leaks = new List<string>();
        for (var i = 0; i < responses.Count; i++)
        {
            foreach (var (secret, what) in secrets.Where(s => responses[i].Text.Contains(s.Key, StringComparison.Ordinal)))
            {
                if (issuedIn.GetValueOrDefault(secret, -1) != i)
                {
                    leaks.Add($"{what} in the answer to {responses[i].Request}");
                }
            }
        }

        var lines = LogSink.AllLines.Skip(firstLine).ToList();
        foreach (var line in lines)
        {
            foreach (var (secret, what) in secrets.Where(s => line.Contains(s.Key, StringComparison.Ordinal)))
            {
                leaks.Add($"{what} in the log line: {line.Replace(secret, "***", StringComparison.Ordinal)[..Math.Min(300, line.Length)]}");
            }
        }

        Assert.True(leaks.Count == 0, string.Join("\n", leaks.Distinct().Take(20)));

        // What was scanned is what was promised: Trace entries, scopes, and the gateway's own lines.
        Assert.Contains(lines, line => line.StartsWith("Trace ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains(" => ", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains(" Yarp.", StringComparison.Ordinal));
        Assert.True(responses.Count >= 20, $"{responses.Count} responses");
    }

    private static IEnumerable<string> TokensIn(string body)
    {
        if (!body.StartsWith('{'))
        {
            yield break;
        }

        JsonElement json;
        try
        {
            json = JsonDocument.Parse(body).RootElement;
        }
        catch (JsonException)
        {
            yield break;
        }

        foreach (var field in new[] { "access_token", "refresh_token" })
        {
            if (json.TryGetProperty(field, out var token) && token.GetString() is { Length: > 0 } value)
            {
                yield return value;
            }
        }
    }

    public sealed record Recorded(string Request, string Body, string Text);

    /// <summary>Keeps every answer the client got: its status line, headers and whole body.</summary>
    private sealed class Recorder(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private readonly List<Recorded> _responses = [];

        public IReadOnlyList<Recorded> Responses
        {
            get
            {
                lock (_responses)
                {
                    return [.. _responses];
                }
            }
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            var text = $"{(int)response.StatusCode} {response.ReasonPhrase}\n{response.Headers}{response.Content.Headers}\n{body}";
            lock (_responses)
            {
                _responses.Add(new Recorded($"{request.Method} {request.RequestUri}", body, text));
            }

            return response;
        }
    }
}
