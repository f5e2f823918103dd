using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// Every log line every API instance of the test run writes, and every secret the tests handed out or received
/// (passwords, tokens, keys). <see cref="SecretLeakCheck"/> fails the run if any secret appears in any line.
/// </summary>
public static class LogSink
{
    private static readonly ConcurrentQueue<string> Lines = new();
    private static readonly ConcurrentDictionary<string, byte> Secrets = new();

    public static IReadOnlyCollection<string> AllLines => Lines;

    public static void Write(string line) => Lines.Enqueue(line);

    public static string Secret(string value)
    {
        if (value.Length >= 8)
        {
            Secrets.TryAdd(value, 0);
        }

        return value;
    }

    public static IReadOnlyList<string> Leaks() =>
        Secrets.Keys.SelectMany(secret => Lines.Where(line => line.Contains(secret, StringComparison.Ordinal)).Select(line => $"{Mask(secret)} in: {line}")).ToList();

    private static string Mask(string secret) => secret[..4] + "…";

    /// <summary>Captures every entry with its properties and every scope around it (the factory hands over its scopes).</summary>
    public sealed class Provider : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, () => _scopes);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }
    }

    private sealed class Logger(string category, Func<IExternalScopeProvider> scopes) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => scopes().Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var properties = state is IEnumerable<KeyValuePair<string, object?>> pairs ? Pairs(pairs) : "";
            var scopeText = new System.Text.StringBuilder();
            scopes().ForEachScope((scope, text) => text.Append(" => ").Append(scope is IEnumerable<KeyValuePair<string, object?>> values ? Pairs(values) : scope), scopeText);
            Write($"{logLevel} {category}: {formatter(state, exception)} {properties}{scopeText} {exception}");
        }

        private static string Pairs(IEnumerable<KeyValuePair<string, object?>> pairs) => string.Join(" ", pairs.Select(p => $"{p.Key}={p.Value}"));
    }
}

/// <summary>Runs after every test of the assembly: no secret may have reached a log.</summary>
public sealed class SecretLeakCheck : IAsyncLifetime
{
    public ValueTask InitializeAsync()
    {
        File.Delete(AssemblyCleanup.FailureFile); // a report is about this run only
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        var leaks = LogSink.Leaks();
        if (leaks.Count > 0)
        {
            var message = $"{leaks.Count} secret(s) reached the logs:\n" + string.Join("\n", leaks.Take(10));
            AssemblyCleanup.Report("secret leak check", message);
            throw new InvalidOperationException(message);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Why an assembly fixture failed at the end of the run, in a file beside the tests (<c>assembly-cleanup-failure.txt</c>):
/// the test runner reports such a failure without its message, and <c>.ci/run</c> prints the file.
/// </summary>
public static class AssemblyCleanup
{
    public static readonly string FailureFile = Path.Combine(AppContext.BaseDirectory, "assembly-cleanup-failure.txt");

    public static void Report(string fixture, string message)
    {
        Console.Error.WriteLine($"ASSEMBLY CLEANUP FAILED ({fixture}): {message}");
        File.AppendAllText(FailureFile, $"{fixture}: {message}\n");
    }
}
