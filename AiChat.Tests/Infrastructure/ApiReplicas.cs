namespace AiChat.Tests.Infrastructure;

/// <summary>
/// Two API processes on one throwaway Postgres database, as replicas: one data folder, so both sign and accept tokens
/// with the same key (what replicas given one secret do). Disposing stops both and deletes the folder.
/// </summary>
public sealed class ApiReplicas : IAsyncDisposable
{
    private readonly string _dataDirectory;

    private ApiReplicas(string dataDirectory, ApiProcess first, ApiProcess second)
    {
        _dataDirectory = dataDirectory;
        First = first;
        Second = second;
    }

    public ApiProcess First { get; }

    public ApiProcess Second { get; }

    public static async Task<ApiReplicas> StartAsync(PostgresServer postgres, IReadOnlyDictionary<string, string>? settings = null)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-replicas-{Guid.NewGuid():N}");
        var all = new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
        {
            ["Store:DataDirectory"] = dataDirectory,
            [$"ConnectionStrings:{ResourceNames.AiChatDb}"] = await postgres.CreateDatabaseAsync(),
        };
        ApiProcess? first = null;
        try
        {
            first = await ApiProcess.StartAsync(all);
            return new ApiReplicas(dataDirectory, first, await ApiProcess.StartAsync(all));
        }
        catch
        {
            if (first is not null)
            {
                await first.DisposeAsync();
            }

            Delete(dataDirectory);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Second.DisposeAsync();
        await First.DisposeAsync();
        Delete(_dataDirectory);
    }

    private static void Delete(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
