extern alias api;

using System.Globalization;
using api::AiChat.Api.Data;
using api::AiChat.Api.Llm;
using Dapper;
using Npgsql;

namespace AiChat.Benchmarks;

/// <summary>Where the benchmark's programs are: the build output of each project, in the configuration the benchmark runs in.</summary>
public static class Builds
{
    public static string Configuration => new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;

    public static string Root
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "AiChat.sln")))
            {
                directory = directory.Parent;
            }

            return directory?.FullName ?? throw new InvalidOperationException("AiChat.sln not found above the benchmark's build output.");
        }
    }

    public static string Dll(string project)
    {
        var dll = Path.Combine(Root, project, "bin", Configuration, "net10.0", project + ".dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build {project} ({Configuration}) first.", dll);
    }

    public static string Benchmark => typeof(Builds).Assembly.Location;
}

/// <summary>
/// The system under measurement on one store: the real API and the real gateway (YARP), each its own process on
/// loopback, the API configured against the stub LLM with a priced model. The benchmark reaches the same store
/// directly to seed histories.
/// </summary>
public sealed class MeasuredSystem : IAsyncDisposable
{
    private static readonly TokenCounter Tokens = new();

    public const string Model = "gpt-4o-mini";

    private readonly NpgsqlDataSource? _dataSource;

    private MeasuredSystem(string store, ServiceProcess apiProcess, ServiceProcess gateway, AiChatDb db, NpgsqlDataSource? dataSource)
    {
        Store = store;
        Api = apiProcess;
        Gateway = gateway;
        Db = db;
        _dataSource = dataSource;
    }

    public string Store { get; }

    public ServiceProcess Api { get; }

    public ServiceProcess Gateway { get; }

    public AiChatDb Db { get; }

    /// <param name="postgres">A connection string to an empty database, or null for SQLite in <paramref name="workDirectory"/>.</param>
    public static async Task<MeasuredSystem> StartAsync(string name, string? postgres, Uri stub, BenchmarkOptions options, string workDirectory)
    {
        TypeHandlers.Register();
        var data = Path.Combine(workDirectory, $"{name}-data");
        Directory.CreateDirectory(data);
        var apiAddress = new Uri($"http://127.0.0.1:{ServiceProcess.FreePort()}/");
        var settings = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = apiAddress.ToString().TrimEnd('/'),
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Store__DataDirectory"] = data,
            ["Llm__Endpoint"] = new Uri(stub, "/v1").ToString(),
            ["Llm__ApiKey"] = "benchmark-stub",
            ["Llm__Model"] = Model,
            ["Billing__DefaultBudgetUsd"] = "100000",
            ["Auth__AccessTokenLifetime"] = "04:00:00",
            // The run measures turns, not the limits that protect a real instance from one user.
            ["Auth__RateLimits__PerClientAddress"] = "10000000",
            ["Chat__RateLimits__MessagesPerMinute"] = "10000000",
            ["Chat__MaxOpenStreamsPerUser"] = "10000000",
            ["Chat__KeepAliveInterval"] = options.KeepAlive.ToString("c", CultureInfo.InvariantCulture),
        };
        if (postgres is not null)
        {
            settings[$"ConnectionStrings__{ResourceNames.AiChatDb}"] = postgres;
        }

        foreach (var (key, value) in options.ApiSettings)
        {
            settings[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var api = await ServiceProcess.StartAsync($"{name}-api", "dotnet", [Builds.Dll("AiChat.Api")], settings, apiAddress, "/health", workDirectory);
        ServiceProcess gateway;
        try
        {
            var gatewayAddress = new Uri($"http://127.0.0.1:{ServiceProcess.FreePort()}/");
            gateway = await ServiceProcess.StartAsync($"{name}-gateway", "dotnet", [Builds.Dll("AiChat.Gateway")], new Dictionary<string, string>
            {
                ["ASPNETCORE_URLS"] = gatewayAddress.ToString().TrimEnd('/'),
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                [$"Services__{ResourceNames.Api}__http__0"] = apiAddress.ToString().TrimEnd('/'),
            }, gatewayAddress, "/health", workDirectory);
        }
        catch
        {
            await api.DisposeAsync();
            throw;
        }

        var dataSource = postgres is null ? null : NpgsqlDataSource.Create(postgres);
        var db = dataSource is null ? AiChatDb.ForSqlite(Path.Combine(data, "aichat.db")) : AiChatDb.ForPostgres(dataSource, postgres!);
        return new MeasuredSystem(postgres is null ? "SQLite" : "Postgres", api, gateway, db, dataSource);
    }

    /// <summary>Stores <paramref name="count"/> messages straight into the user's default conversation, oldest first; the last seq.</summary>
    public async Task<long> SeedHistoryAsync(Guid userId, int count)
    {
        await using var connection = await Db.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var start = DateTimeOffset.UtcNow.AddDays(-30);
        await connection.ExecuteAsync(
            """
            INSERT INTO messages (id, user_id, conversation_id, role, content, status, created_at, tokens)
            VALUES (@Id, @UserId, (SELECT id FROM conversations WHERE user_id = @UserId AND is_default), @Role, @Content, 'complete', @CreatedAt, @Tokens)
            """,
            Enumerable.Range(1, count).Select(i =>
            {
                var content = $"Message {i}: plans, books and the weather in Porto.";
                return new
                {
                    Id = Guid.NewGuid(),
                    UserId = userId,
                    Role = i % 2 == 1 ? "user" : "assistant",
                    Content = content,
                    CreatedAt = start.AddMilliseconds(i * 10),
                    Tokens = Tokens.Count(content), // as the API stores them
                };
            }),
            transaction);
        await connection.ExecuteAsync(
            "UPDATE conversations SET message_count = message_count + @count WHERE user_id = @userId AND is_default", new { userId, count }, transaction);
        await transaction.CommitAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM messages WHERE user_id = @userId", new { userId });
    }

    /// <summary>Takes a conversation back to its seeded messages, so every measured turn sees the same history.</summary>
    public async Task TrimHistoryAsync(Guid conversationId, long lastSeededSeq)
    {
        await using var connection = await Db.OpenAsync();
        await connection.ExecuteAsync("DELETE FROM messages WHERE conversation_id = @conversationId AND seq > @lastSeededSeq", new { conversationId, lastSeededSeq });
    }

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Api.DisposeAsync();
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}
