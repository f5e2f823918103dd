using System.Diagnostics;
using Microsoft.Extensions.Configuration;

namespace AiChat.AppHost;

public enum AiChatProfile
{
    /// <summary>No containers: the API on SQLite, its built-in agents, ledger and accounts.</summary>
    Embedded,

    /// <summary>Postgres, LiteLLM and Letta containers beside the API and gateway.</summary>
    Full,
}

/// <summary>Chooses the profile: forced by <c>--profile</c> or the <c>profile</c> parameter, else by asking the container engine.</summary>
public static class Profiles
{
    public const string ConfigurationKey = "profile";
    public const string ParameterKey = "Parameters:profile";

    public static (AiChatProfile Profile, string Reason) Choose(IConfiguration configuration, Func<string?>? probeContainerRuntime = null)
    {
        var forced = configuration[ConfigurationKey] ?? configuration[ParameterKey];
        if (!string.IsNullOrWhiteSpace(forced) && !forced.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            return Enum.TryParse<AiChatProfile>(forced, ignoreCase: true, out var profile)
                ? (profile, $"forced by configuration ('{forced}')")
                : throw new ArgumentException($"Unknown profile '{forced}': use embedded, full or auto.");
        }

        var runtime = (probeContainerRuntime ?? ProbeContainerRuntime)();
        return runtime is null
            ? (AiChatProfile.Embedded, "no container engine answered")
            : (AiChatProfile.Full, $"the {runtime} engine answered");
    }

    /// <summary>
    /// Asks the engine itself (<c>docker info</c> / <c>podman info</c>): an installed client without a running engine does not count.
    /// Honours Aspire's <c>ASPIRE_CONTAINER_RUNTIME</c> choice.
    /// </summary>
    public static string? ProbeContainerRuntime()
    {
        var preferred = Environment.GetEnvironmentVariable("ASPIRE_CONTAINER_RUNTIME")
            ?? Environment.GetEnvironmentVariable("DOTNET_ASPIRE_CONTAINER_RUNTIME");
        string[] candidates = string.IsNullOrWhiteSpace(preferred) ? ["docker", "podman"] : [preferred];
        return candidates.FirstOrDefault(EngineAnswers);
    }

    private static bool EngineAnswers(string client)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(client, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }

            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return false; // the client is not installed
        }
    }
}
