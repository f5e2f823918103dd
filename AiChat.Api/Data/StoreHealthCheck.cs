using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AiChat.Api.Data;

/// <summary>Ready when the store answers and the migrations have been applied.</summary>
public sealed class StoreHealthCheck(AiChatDb db) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await db.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM schemaversions";
            var applied = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken));
            return applied > 0
                ? HealthCheckResult.Healthy($"{db.Provider}")
                : HealthCheckResult.Unhealthy($"{db.Provider}: no migration applied");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy($"{db.Provider} unreachable", ex);
        }
    }
}
