using System.Data.Common;
using AiChat.Api.Data;
using Dapper;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Billing;

/// <summary>The account's budget as it stands now. Amounts in nano-USD.</summary>
public sealed record BudgetState(
    long MaxBudget, long? PersonalLimit, long EffectiveLimit, long Spent, long Reserved, string Duration, DateTimeOffset PeriodStart, DateTimeOffset ResetsAt)
{
    public long Remaining => Math.Max(0, EffectiveLimit - Spent - Reserved);
}

/// <summary>The worst case of a call does not fit what is left of the budget.</summary>
public sealed class BudgetExceededException(long remainingNanos, long requiredNanos)
    : Exception($"The budget has {PriceTable.ToUsd(remainingNanos):0.######} USD left; this call may cost up to {PriceTable.ToUsd(requiredNanos):0.######} USD.")
{
    public long RemainingNanos { get; } = remainingNanos;

    public long RequiredNanos { get; } = requiredNanos;
}

public sealed class BillingAccountMissingException() : Exception("The account has no billing account.");

/// <summary>A held reservation: its id, the amount held, and what was left of the budget before it was taken (nano-USD).</summary>
public sealed record Reservation(Guid Id, long Amount, long RemainingBefore);

/// <summary>A settled call: what was charged, and whether the real cost was above the reservation (and capped to it).</summary>
public sealed record Settlement(long Charged, bool Capped);

/// <summary>What a turn's LLM calls were charged, settled call by call.</summary>
public sealed record TurnSpend(long CostNanos, long PromptTokens, long CompletionTokens, long Calls);

public sealed record UsageRow(string Key, long CostNanos, long PromptTokens, long CompletionTokens, long Calls);

public enum UsageGrouping
{
    Day,
    Model,
}

/// <summary>
/// AiChat's ledger, the source of truth for what a user may spend: before every LLM call the worst case is reserved
/// atomically (the account row is locked on Postgres; SQLite serialises writers), afterwards the reservation is settled
/// to the real cost. Reservations left by a crash stop counting when they expire. The period is computed at use.
/// </summary>
public sealed class Ledger(AiChatDb db, IOptions<BillingOptions> options, TimeProvider time)
{
    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties, not constructor arguments.
    private sealed class AccountRow
    {
        public long MaxBudgetNanousd { get; set; }

        public long? PersonalLimitNanousd { get; set; }

        public string Duration { get; set; } = "";

        public DateTimeOffset PeriodAnchor { get; set; }

        public DateTimeOffset? PeriodStart { get; set; }

        public DateTimeOffset? PeriodEnd { get; set; }

        public long? Spent { get; set; }

        public long? Reserved { get; set; }
    }

    public async Task EnsureAccountAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        // Both stores keep microseconds: the anchor and the first period are stored as they will be read back.
        var now = time.GetUtcNow();
        now = new DateTimeOffset(now.UtcTicks - now.UtcTicks % 10, TimeSpan.Zero);
        var (start, end) = BudgetPeriod.Current(now, options.Value.DefaultPeriod, now);
        const string columns = "(user_id, max_budget_nanousd, duration, period_anchor, period_start, period_end, updated_at) VALUES (@userId, @max, @duration, @now, @start, @end, @now)";
        var insert = db.Provider == StoreProvider.Postgres
            ? $"INSERT INTO billing_accounts {columns} ON CONFLICT (user_id) DO NOTHING"
            : $"INSERT OR IGNORE INTO billing_accounts {columns}";
        await connection.ExecuteAsync(new CommandDefinition(insert,
            new { userId, max = PriceTable.ToNanos(options.Value.DefaultBudgetUsd), duration = options.Value.DefaultPeriod, now, start, end }, cancellationToken: cancellationToken));
    }

    public async Task DeleteAccountAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM billing_accounts WHERE user_id = @userId", new { userId }, cancellationToken: cancellationToken));
    }

    public async Task<BudgetState?> GetStateAsync(Guid userId, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await StateAsync(connection, null, userId, time.GetUtcNow(), lockRow: false, cancellationToken);
    }

    /// <summary>Reserves <paramref name="amount"/> if it fits; returns the reservation's id, or throws <see cref="BudgetExceededException"/>.</summary>
    public async Task<Guid> ReserveAsync(Guid userId, Guid? turnId, string model, long amount, CancellationToken cancellationToken) =>
        (await HoldAsync(userId, turnId, model, amount, cancellationToken)).Id;

    /// <summary>Reserves <paramref name="amount"/> if it fits, or throws <see cref="BudgetExceededException"/>.</summary>
    public async Task<Reservation> HoldAsync(Guid userId, Guid? turnId, string model, long amount, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var connection = await db.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var state = await StateAsync(connection, transaction, userId, now, lockRow: true, cancellationToken) ?? throw new BillingAccountMissingException();
        if (amount > state.Remaining)
        {
            throw new BudgetExceededException(state.Remaining, amount);
        }

        var id = Guid.NewGuid();
        await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO ledger_entries (id, user_id, kind, state, amount_nanousd, reserved_nanousd, model, turn_id, created_at, expires_at)
            VALUES (@id, @userId, 'llm_call', 'held', @amount, @amount, @model, @turnId, @now, @expires)
            """,
            new { id, userId, amount, model, turnId, now, expires = now + options.Value.ReservationTtl }, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return new Reservation(id, amount, state.Remaining);
    }

    /// <summary>
    /// Settles a reservation to the real cost. A cost above the reservation is capped at it (and reported), so the
    /// budget is never overspent: the reservation is the most the call was allowed to cost.
    /// </summary>
    public async Task<Settlement> SettleAsync(Guid reservationId, long actual, int promptTokens, int completionTokens, string model)
    {
        await using var connection = await db.OpenAsync();
        // One statement: the charge is capped at what was reserved, read back from the row it updates.
        var charged = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            """
            UPDATE ledger_entries SET state = 'settled',
                amount_nanousd = CASE WHEN @actual < reserved_nanousd THEN @actual ELSE reserved_nanousd END,
                prompt_tokens = @promptTokens, completion_tokens = @completionTokens, model = @model, expires_at = NULL
            WHERE id = @reservationId AND state = 'held'
            RETURNING amount_nanousd
            """,
            new { reservationId, actual, promptTokens, completionTokens, model })) ?? actual;
        return new Settlement(charged, actual > charged);
    }

    public async Task ReleaseAsync(Guid reservationId)
    {
        await using var connection = await db.OpenAsync();
        await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE ledger_entries SET state = 'released', amount_nanousd = 0, expires_at = NULL WHERE id = @reservationId AND state = 'held'", new { reservationId }));
    }

    /// <summary>
    /// What a turn's calls were charged (its settled entries, made at or after <paramref name="since"/>, the turn's start):
    /// for a turn cut off mid-answer, whose runtime never reported usage but whose calls were settled all the same.
    /// </summary>
    public async Task<TurnSpend> TurnSpendAsync(Guid userId, Guid turnId, DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.QuerySingleAsync<TurnSpend>(new CommandDefinition(
            """
            SELECT CAST(COALESCE(SUM(amount_nanousd), 0) AS BIGINT) AS CostNanos, CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS PromptTokens,
                   CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS CompletionTokens, CAST(COUNT(*) AS BIGINT) AS Calls
            FROM ledger_entries WHERE user_id = @userId AND state = 'settled' AND created_at >= @since AND turn_id = @turnId
            """,
            new { userId, turnId, since }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Releases every hold a turn still has: for a turn lost with its instance, whose calls nobody will settle, so the
    /// user's budget is whole again now rather than when the holds expire (<see cref="BillingOptions.ReservationTtl"/>).
    /// </summary>
    public async Task<int> ReleaseTurnAsync(Guid userId, Guid turnId, CancellationToken cancellationToken)
    {
        // By user and state first: the (user_id, state, created_at) index finds the few holds; no index on turn_id needed.
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE ledger_entries SET state = 'released', amount_nanousd = 0, expires_at = NULL WHERE user_id = @userId AND state = 'held' AND turn_id = @turnId",
            new { userId, turnId }, cancellationToken: cancellationToken));
    }

    public async Task<bool> SetPersonalLimitAsync(Guid userId, long? limit, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            "UPDATE billing_accounts SET personal_limit_nanousd = @limit, updated_at = @now WHERE user_id = @userId",
            new { userId, limit, now = time.GetUtcNow() }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>An admin's grant: the budget and, optionally, its period; a personal limit above the new grant is lowered to it.</summary>
    public async Task<bool> SetGrantAsync(Guid userId, long maxBudget, string? duration, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE billing_accounts SET max_budget_nanousd = @maxBudget, duration = COALESCE(@duration, duration),
                personal_limit_nanousd = CASE WHEN personal_limit_nanousd > @maxBudget THEN @maxBudget ELSE personal_limit_nanousd END,
                updated_at = @now
            WHERE user_id = @userId
            """,
            new { userId, maxBudget, duration, now = time.GetUtcNow() }, cancellationToken: cancellationToken)) == 1;
    }

    /// <summary>Settled usage between two instants, grouped by UTC day or by model.</summary>
    public async Task<IReadOnlyList<UsageRow>> UsageAsync(Guid userId, DateTimeOffset from, DateTimeOffset to, UsageGrouping groupBy, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(DateTimeOffset CreatedAt, string? Model, long Amount, long? Prompt, long? Completion)>(new CommandDefinition(
            """
            SELECT created_at, model, CAST(amount_nanousd AS BIGINT), CAST(prompt_tokens AS BIGINT), CAST(completion_tokens AS BIGINT) FROM ledger_entries
            WHERE user_id = @userId AND state = 'settled' AND created_at >= @from AND created_at < @to
            """,
            new { userId, from, to }, cancellationToken: cancellationToken));
        return rows
            .GroupBy(r => groupBy == UsageGrouping.Model ? r.Model ?? "unknown" : r.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new UsageRow(g.Key, g.Sum(r => r.Amount), g.Sum(r => r.Prompt ?? 0), g.Sum(r => r.Completion ?? 0), g.Count()))
            .ToList();
    }

    private async Task<BudgetState?> StateAsync(DbConnection connection, DbTransaction? transaction, Guid userId, DateTimeOffset now, bool lockRow, CancellationToken cancellationToken)
    {
        // One statement reads the account and its sums over the period stored with it. On Postgres a reservation first
        // locks the account row, so concurrent reservations of one user queue, and then sums in a statement of its own:
        // subqueries of the locking statement would see the ledger as it was before the lock was granted. (SQLite's
        // write transaction already serialises writers.)
        var lockFirst = lockRow && db.Provider == StoreProvider.Postgres;
        var sums = lockFirst ? "NULL AS Spent, NULL AS Reserved" : $"({Sums("a.period_start", "a.period_end", "settled")}) AS Spent, ({Sums("a.period_start", "a.period_end", "held")}) AS Reserved";
        var account = await connection.QuerySingleOrDefaultAsync<AccountRow>(new CommandDefinition(
            $"""
            SELECT a.max_budget_nanousd AS MaxBudgetNanousd, a.personal_limit_nanousd AS PersonalLimitNanousd, a.duration, a.period_anchor AS PeriodAnchor,
                a.period_start AS PeriodStart, a.period_end AS PeriodEnd, {sums}
            FROM billing_accounts a WHERE a.user_id = @userId{(lockFirst ? " FOR UPDATE" : "")}
            """,
            new { userId, now }, transaction, cancellationToken: cancellationToken));
        if (account is null)
        {
            return null;
        }

        // The period is computed from the anchor at every use, so it rolls over exactly at its boundary.
        var (start, end) = BudgetPeriod.Current(account.PeriodAnchor, account.Duration, now);
        var (spent, reserved) = (account.Spent, account.Reserved);
        if (lockFirst || account.PeriodStart != start || account.PeriodEnd != end)
        {
            // Summed now, over the current period (a new one, or the grant's period changed: keep it for the next reads).
            (spent, reserved) = await connection.QuerySingleAsync<(long?, long?)>(new CommandDefinition(
                $"SELECT ({Sums("@start", "@end", "settled")}), ({Sums("@start", "@end", "held")})",
                new { userId, start, end, now }, transaction, cancellationToken: cancellationToken));
            if (transaction is not null && (account.PeriodStart != start || account.PeriodEnd != end))
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    "UPDATE billing_accounts SET period_start = @start, period_end = @end WHERE user_id = @userId",
                    new { userId, start, end }, transaction, cancellationToken: cancellationToken));
            }
        }

        var effective = Math.Min(account.MaxBudgetNanousd, account.PersonalLimitNanousd ?? long.MaxValue);
        return new BudgetState(account.MaxBudgetNanousd, account.PersonalLimitNanousd, effective, spent ?? 0, reserved ?? 0, account.Duration, start, end);
    }

    // What was spent (settled) or is held (unexpired reservations) by @userId in [start, end).
    private static string Sums(string start, string end, string state) =>
        $"""
        SELECT CAST(SUM(amount_nanousd) AS BIGINT) FROM ledger_entries
        WHERE user_id = @userId AND state = '{state}' AND created_at >= {start} AND created_at < {end}{(state == "held" ? " AND expires_at > @now" : "")}
        """;
}
