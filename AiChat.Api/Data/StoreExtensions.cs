using Npgsql;

namespace AiChat.Api.Data;

public static class StoreExtensions
{
    /// <summary>Registers the store (Postgres when <c>ConnectionStrings:aichatdb</c> is set, else SQLite) and its migrator.</summary>
    public static IHostApplicationBuilder AddStore(this IHostApplicationBuilder builder)
    {
        TypeHandlers.Register();
        builder.Services.Configure<StoreOptions>(builder.Configuration.GetSection(StoreOptions.Section));

        var options = builder.Configuration.GetSection(StoreOptions.Section).Get<StoreOptions>() ?? new StoreOptions();
        var connectionString = builder.Configuration.GetConnectionString(ResourceNames.AiChatDb);
        var provider = options.Provider ?? (string.IsNullOrWhiteSpace(connectionString) ? StoreProvider.Sqlite : StoreProvider.Postgres);

        if (provider == StoreProvider.Postgres)
        {
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new InvalidOperationException($"Store:Provider is Postgres but ConnectionStrings:{ResourceNames.AiChatDb} is not set.");
            }

            // Aspire's Npgsql integration adds pooling, tracing and metrics; readiness is our own store check.
            builder.AddNpgsqlDataSource(ResourceNames.AiChatDb, settings => settings.DisableHealthChecks = true);
            builder.Services.AddSingleton(sp => AiChatDb.ForPostgres(sp.GetRequiredService<NpgsqlDataSource>(), connectionString));
        }
        else
        {
            var directory = DataFolder.Resolve(builder.Configuration, builder.Environment);
            Directory.CreateDirectory(directory);
            builder.Services.AddSingleton(AiChatDb.ForSqlite(Path.Combine(directory, options.SqliteFileName), options.SqliteSynchronous.ToUpperInvariant()));
        }

        builder.Services.AddSingleton<StoreMigrator>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StoreMigrator>());
        builder.Services.AddSingleton<StoreSignals>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StoreSignals>());
        builder.Services.AddHealthChecks().AddCheck<StoreHealthCheck>("store");
        return builder;
    }
}
