namespace AiChat.Tests.Infrastructure;

/// <summary>
/// Two API processes on one throwaway Postgres database, as the AppHost runs replicas: a data folder each (as on two
/// machines), and the secrets they must agree on — the token signing secret and the internal LLM secret — given
/// in configuration. Disposing stops both and deletes the folders.
/// </summary>
public sealed class ApiReplicas : IAsyncDisposable
{
    private readonly string[] _dataDirectories;

    private ApiReplicas(string[] dataDirectories, string internalLlmSecret, ApiProcess first, ApiProcess second)
    {
        _dataDirectories = dataDirectories;
        InternalLlmSecret = internalLlmSecret;
        First = first;
        Second = second;
    }

    /// <summary>What both sign metered-LLM keys with, so a test can make a user's key as an agent runtime gets it.</summary>
    public string InternalLlmSecret { get; }

    public ApiProcess First { get; }

    public ApiProcess Second { get; }

    public static async Task<ApiReplicas> StartAsync(PostgresServer postgres, IReadOnlyDictionary<string, string>? settings = null)
    {
        string[] dataDirectories = [NewDirectory(), NewDirectory()];
        var shared = new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
        {
            [$"ConnectionStrings:{ResourceNames.AiChatDb}"] = await postgres.CreateDatabaseAsync(),
            ["Auth:SigningKeySecret"] = LogSink.Secret("replica-signing-" + Guid.NewGuid().ToString("N")),
            ["InternalLlm:Secret"] = LogSink.Secret("replica-internal-" + Guid.NewGuid().ToString("N")),
        };
        ApiProcess? first = null;
        try
        {
            first = await ApiProcess.StartAsync(new Dictionary<string, string>(shared) { ["Store:DataDirectory"] = dataDirectories[0] });
            return new ApiReplicas(dataDirectories, shared["InternalLlm:Secret"], first, await ApiProcess.StartAsync(new Dictionary<string, string>(shared) { ["Store:DataDirectory"] = dataDirectories[1] }));
        }
        catch
        {
            if (first is not null)
            {
                await first.DisposeAsync();
            }

            Array.ForEach(dataDirectories, Delete);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Second.DisposeAsync();
        await First.DisposeAsync();
        Array.ForEach(_dataDirectories, Delete);
    }

    private static string NewDirectory() => Path.Combine(Path.GetTempPath(), $"aichat-replica-{Guid.NewGuid():N}");

    private static void Delete(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
