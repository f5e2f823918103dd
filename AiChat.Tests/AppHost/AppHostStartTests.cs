using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using AiChat.Api.Llm;
using AiChat.Tests.Chat;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.AppHost;

/// <summary>
/// The README's run command, proven: <c>dotnet run --project AiChat.AppHost</c> (embedded profile, the build this test
/// was built with) starts the whole system under Aspire's orchestrator, prints where the gateway listens, and that
/// gateway answers <c>/health</c> and a registered user's chat message; then the system stops with its children.
/// </summary>
[Trait("Category", "AppHost")]
public sealed partial class AppHostStartTests(PostgresServer postgres)
{
    // The AppHost's launch profile fixes these (dashboard, its OTLP and resource service, the API's proxied endpoint).
    private static readonly int[] FixedPorts = [15080, 19080, 20080, 5180];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheReadmesRunCommandStartsTheEmbeddedSystemAndItsGatewayAnswers()
    {
        if (FixedPorts.FirstOrDefault(InUse) is var busy and not 0)
        {
            Assert.Fail($"Port {busy} is taken (is another AppHost running?): the AppHost's launch profile needs 15080, 19080, 20080 and 5180.");
        }

        var gatewayPort = Loopback.FreePort();
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-apphost-{Guid.NewGuid():N}");
        await using var system = AppHostRun.Start(gatewayPort, dataDirectory);
        try
        {
            var address = await system.ReadyAsync(TimeSpan.FromSeconds(180));

            Assert.Equal(new Uri($"http://localhost:{gatewayPort}"), address);
            Assert.Contains(system.Output, line => line.Contains("AiChat profile: embedded", StringComparison.Ordinal));
            using var gateway = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
            var health = await gateway.GetAsync("/health", Ct);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal("Healthy", (await health.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());

            var pair = await gateway.RegisterAsync();
            var answer = await gateway.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, "Hi! My name is Ana.")), Ct);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            var body = await answer.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.StartsWith(OfflineChatClient.Label, body.GetProperty("assistant_message").GetProperty("content").GetString());
            Assert.True(File.Exists(Path.Combine(dataDirectory, "aichat.db")), "the API's store is the data folder the AppHost passed on");
        }
        finally
        {
            await system.StopAsync();
            if (Directory.Exists(dataDirectory))
            {
                Directory.Delete(dataDirectory, recursive: true);
            }
        }

        await AssertClosedAsync(gatewayPort);
    }

    [Fact]
    public async Task TheScaledShapeRunsTwoApiReplicasOnAGivenPostgresWithoutContainersBehindTheGateway()
    {
        if (FixedPorts.FirstOrDefault(InUse) is var busy and not 0)
        {
            Assert.Fail($"Port {busy} is taken (is another AppHost running?): the AppHost's launch profile needs 15080, 19080, 20080 and 5180.");
        }

        var database = await postgres.CreateDatabaseAsync();
        var gatewayPort = Loopback.FreePort();
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-apphost-{Guid.NewGuid():N}");
        await using var system = AppHostRun.Start(gatewayPort, dataDirectory, "--Parameters:api-replicas", "2", "--Parameters:postgres", database);
        try
        {
            var address = await system.ReadyAsync(TimeSpan.FromSeconds(180));
            using var gateway = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
            Assert.Equal(HttpStatusCode.OK, (await gateway.GetAsync("/health", Ct)).StatusCode);

            // Two API processes on the given database: each holds its one listening connection for the store's signals.
            await using (var connection = new Npgsql.NpgsqlConnection(database))
            {
                await connection.OpenAsync(Ct);
                var deadline = DateTime.UtcNow.AddSeconds(60);
                long listeners;
                while ((listeners = await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")) < 2)
                {
                    Assert.True(DateTime.UtcNow < deadline, $"{listeners} API instances listen on the given Postgres after 60 s");
                    await Task.Delay(200, Ct);
                }

                Assert.Equal(2, listeners);
            }

            // Through the gateway, a user's turns on whichever replica answers, all in the one store.
            var pair = await gateway.RegisterAsync();
            for (var i = 0; i < 4; i++)
            {
                var answer = await gateway.SendAsync(ChatTests.Json(SseReader.Send(pair.AccessToken, $"Hello {i}")), Ct);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            Assert.Equal(8, (await ChatTests.HistoryAsync(gateway, pair.AccessToken, 20)).Count);
            Assert.False(File.Exists(Path.Combine(dataDirectory, "aichat.db")), "the replicas' store is the given Postgres, not SQLite");
        }
        finally
        {
            await system.StopAsync();
            if (Directory.Exists(dataDirectory))
            {
                Directory.Delete(dataDirectory, recursive: true);
            }
        }

        await AssertClosedAsync(gatewayPort);
    }

    private static bool InUse(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    // Stopping the command stops what it started: the gateway's port closes (polled, with a deadline).
    private static async Task AssertClosedAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (InUse(port))
        {
            Assert.True(DateTime.UtcNow < deadline, $"The gateway's port {port} is still open after the AppHost stopped.");
            await Task.Delay(200, Ct);
        }
    }

    /// <summary>The <c>dotnet run</c> process, its output as it comes, and the gateway address once it prints that it is ready.</summary>
    private sealed partial class AppHostRun : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly TaskCompletionSource<Uri> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<string> _output = [];

        private AppHostRun(Process process) => _process = process;

        public IReadOnlyList<string> Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToList();
                }
            }
        }

        public static AppHostRun Start(int gatewayPort, string dataDirectory, params string[] parameters)
        {
            var root = RepositoryRoot();
            var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            // The README's command; --no-build and -c reuse the build this test runs from, the rest picks the embedded profile and a free port.
            var start = new ProcessStartInfo("dotnet",
                ["run", "--project", "AiChat.AppHost", "--no-build", "-c", configuration, "--", "--profile", "embedded", "--Parameters:gateway-port", gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture), .. parameters])
            {
                WorkingDirectory = root,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            // The API inherits these: its store in a folder of this test's own, and the offline model without its typing pace.
            start.Environment["Store__DataDirectory"] = dataDirectory;
            start.Environment["Llm__Offline__WordDelay"] = "00:00:00";
            var run = new AppHostRun(Process.Start(start)!);
            run._process.OutputDataReceived += (_, line) => run.Read(line.Data);
            run._process.ErrorDataReceived += (_, line) => run.Read(line.Data);
            run._process.BeginOutputReadLine();
            run._process.BeginErrorReadLine();
            return run;
        }

        public async Task<Uri> ReadyAsync(TimeSpan timeout)
        {
            var exited = _process.WaitForExitAsync(Ct);
            var first = await Task.WhenAny(_ready.Task, exited, Task.Delay(timeout, Ct));
            if (first != _ready.Task)
            {
                Assert.Fail($"The AppHost {(first == exited ? $"exited ({_process.ExitCode})" : $"was not ready within {timeout.TotalSeconds:0} s")}:\n{string.Join('\n', Output.TakeLast(40))}");
            }

            return await _ready.Task;
        }

        /// <summary>Ctrl+C's equivalent (SIGTERM), as a user stops it; the whole process tree is killed if it has not exited in 30 s.</summary>
        public async Task StopAsync()
        {
            if (_process.HasExited)
            {
                return;
            }

            if (OperatingSystem.IsWindows())
            {
                _process.Kill(entireProcessTree: true);
            }
            else
            {
                using var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                await term.WaitForExitAsync(Ct);
            }

            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _process.Dispose();
        }

        private void Read(string? line)
        {
            if (line is null)
            {
                return;
            }

            LogSink.Write("apphost: " + line);
            lock (_output)
            {
                _output.Add(line);
            }

            if (ReadyLine().Match(line) is { Success: true } ready)
            {
                _ready.TrySetResult(new Uri(ready.Groups["url"].Value));
            }
        }

        private static string RepositoryRoot()
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AiChat.sln")))
            {
                directory = directory.Parent;
            }

            return directory?.FullName ?? throw new InvalidOperationException("AiChat.sln not found above the test output.");
        }

        [GeneratedRegex(@"AiChat is ready: the gateway listens on (?<url>http://\S+)")]
        private static partial Regex ReadyLine();
    }
}
