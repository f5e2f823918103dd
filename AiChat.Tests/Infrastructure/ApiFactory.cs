using AiChat.Api.Data;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Infrastructure;

/// <summary>
/// The real API (its Program, middleware and store) on a fresh SQLite file or Postgres database.
/// Tests may add endpoints of their own to exercise the pipeline with shapes no feature has yet.
/// </summary>
public sealed class ApiFactory : WebApplicationFactory<Program>
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), $"aichat-api-{Guid.NewGuid():N}");
    private readonly Dictionary<string, string?> _settings = new();
    private readonly List<Action<IEndpointRouteBuilder>> _extraEndpoints = [];
    private readonly List<Action<IServiceCollection>> _services = [];

    public ApiFactory(string? dataDirectory = null)
    {
        _dataDirectory = dataDirectory ?? _dataDirectory;
    }

    public string DataDirectory => _dataDirectory;

    /// <summary>When false, the data folder outlives this factory (to restart the API on the same store).</summary>
    public bool DeleteDataOnDispose { get; init; } = true;

    public ApiFactory WithServices(Action<IServiceCollection> configure)
    {
        _services.Add(configure);
        return this;
    }

    public ApiFactory WithSetting(string key, string? value)
    {
        _settings[key] = value;
        return this;
    }

    public ApiFactory WithPostgres(string connectionString) => WithSetting($"ConnectionStrings:{ResourceNames.AiChatDb}", connectionString);

    /// <summary>This API on the given store: a new Postgres database, or (the default) SQLite in its data folder.</summary>
    public async Task<ApiFactory> OnAsync(StoreProvider provider, PostgresServer postgres) =>
        provider == StoreProvider.Postgres ? WithPostgres(await postgres.CreateDatabaseAsync()) : this;

    /// <summary>This API on the Postgres database given, or on SQLite when none is (to restart an API on the same store).</summary>
    public ApiFactory OnStore(string? postgresConnectionString) =>
        postgresConnectionString is null ? this : WithPostgres(postgresConnectionString);

    public ApiFactory WithEndpoints(Action<IEndpointRouteBuilder> map)
    {
        _extraEndpoints.Add(map);
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Store:DataDirectory", _dataDirectory);

        // The offline model streams at once unless a test asks for its pace (appsettings.json sets one for people).
        builder.UseSetting("Llm:Offline:WordDelay", "00:00:00");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.AddProvider(new LogSink.Provider()).SetMinimumLevel(LogLevel.Trace));
        builder.ConfigureServices(services =>
        {
            services.AddSingleton<IStartupFilter>(new ExtraEndpoints(_extraEndpoints));
            _services.ForEach(configure => configure(services));
        });
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        var signingKey = Path.Combine(_dataDirectory, "keys", "token-signing-es256.pem");
        if (File.Exists(signingKey))
        {
            foreach (var line in File.ReadAllLines(signingKey).Where(l => !l.StartsWith("-----", StringComparison.Ordinal)))
            {
                LogSink.Secret(line);
            }
        }

        if (DeleteDataOnDispose && Directory.Exists(_dataDirectory))
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
    }

    // Endpoints are matched lazily, so routes added once the app's pipeline is built still take part in routing,
    // behind the app's own exception handler and problem details.
    private sealed class ExtraEndpoints(List<Action<IEndpointRouteBuilder>> maps) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            next(app);
            if (maps.Count > 0 && app.Properties.TryGetValue("__EndpointRouteBuilder", out var routes) && routes is IEndpointRouteBuilder endpoints)
            {
                maps.ForEach(map => map(endpoints));
            }
        };
    }
}
