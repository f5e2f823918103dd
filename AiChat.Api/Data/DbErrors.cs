using Microsoft.Data.Sqlite;
using Npgsql;

namespace AiChat.Api.Data;

public static class DbErrors
{
    /// <summary>A unique or primary-key constraint refused the write (SQLite 19/2067/1555, Postgres 23505).</summary>
    public static bool IsUniqueViolation(Exception exception) => exception switch
    {
        SqliteException sqlite => sqlite.SqliteErrorCode == 19 && sqlite.SqliteExtendedErrorCode is 2067 or 1555,
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.UniqueViolation,
        _ => false,
    };
}
