using System.Diagnostics;

namespace AiChat.Tests.Benchmarks;

/// <summary>Runs the benchmark program (its own build output, in this test assembly's configuration) as a person would, and gives its output.</summary>
public static class BenchmarkCommand
{
    public static async Task<(int ExitCode, string Output)> RunAsync(IEnumerable<string> arguments, string? postgresAdmin, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet", [Dll(), .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (postgresAdmin is not null)
        {
            start.Environment["AICHAT_BENCH_POSTGRES"] = postgresAdmin;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try
        {
            await process.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(timeout, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await output + await error);
    }

    private static string Dll()
    {
        var testDirectory = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var configuration = testDirectory.Parent!.Name;
        var root = testDirectory;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "AiChat.sln")))
        {
            root = root.Parent;
        }

        var dll = Path.Combine(root?.FullName ?? throw new InvalidOperationException("AiChat.sln not found above the test output."), "AiChat.Benchmarks", "bin", configuration, "net10.0", "AiChat.Benchmarks.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the solution first.", dll);
    }
}
