using AiChat.Api.Billing;
using AiChat.Api.Data;
using AiChat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.Options;

namespace AiChat.Tests.Billing;

/// <summary>The ledger on both stores: reservations never overspend, under concurrency and across instances.</summary>
[Trait("Category", "Billing")]
public sealed class LedgerTests(PostgresServer postgres)
{
    private static readonly IOptions<BillingOptions> Budget = Options.Create(new BillingOptions { DefaultBudgetUsd = 1m, DefaultPeriod = "1mo" });

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task TwoHundredConcurrentReservationsAdmitNoMoreThanFit(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        var userId = await NewAccountAsync(store);
        var ledger = new Ledger(store.Db, Budget, TimeProvider.System);
        const long worstCase = 45_000_000; // 0.045 USD: 22 fit in 1 USD

        var admitted = await ReserveConcurrentlyAsync([ledger], userId, worstCase, 200);

        Assert.Equal(22, admitted.Count);
        foreach (var reservation in admitted)
        {
            await ledger.SettleAsync(reservation, worstCase * 2, 100, 100, "gpt-4o-mini"); // a real cost above the reservation is capped
        }

        var state = (await ledger.GetStateAsync(userId, TestContext.Current.CancellationToken))!;
        Assert.True(state.Spent <= state.EffectiveLimit, $"spent {state.Spent} of {state.EffectiveLimit}");
        Assert.Equal(22 * worstCase, state.Spent);
        Assert.Equal(0, state.Reserved);
    }

    [Fact]
    public async Task TwoInstancesOnOnePostgresStillAdmitNoMoreThanFit()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var one = Npgsql.NpgsqlDataSource.Create(connectionString);
        await using var two = Npgsql.NpgsqlDataSource.Create(connectionString);
        var dbOne = AiChatDb.ForPostgres(one, connectionString);
        await new StoreMigrator(dbOne, Options.Create(new StoreOptions()), Microsoft.Extensions.Logging.Abstractions.NullLogger<StoreMigrator>.Instance).MigrateAsync(TestContext.Current.CancellationToken);
        var userId = Guid.NewGuid();
        await using (var connection = await dbOne.OpenAsync(TestContext.Current.CancellationToken))
        {
            await connection.ExecuteAsync("INSERT INTO users (id, email, email_normalized, created_at, updated_at) VALUES (@userId, 'a@example.com', 'a@example.com', @now, @now)", new { userId, now = DateTimeOffset.UtcNow });
        }

        var ledgers = new[] { new Ledger(dbOne, Budget, TimeProvider.System), new Ledger(AiChatDb.ForPostgres(two, connectionString), Budget, TimeProvider.System) };
        await ledgers[0].EnsureAccountAsync(userId, TestContext.Current.CancellationToken);

        var admitted = await ReserveConcurrentlyAsync(ledgers, userId, 100_000_000, 200);

        Assert.Equal(10, admitted.Count);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task AReservationLeftByACrashStopsCountingWhenItExpires(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var userId = await NewAccountAsync(store, clock);
        var ledger = new Ledger(store.Db, Options.Create(new BillingOptions { DefaultBudgetUsd = 1m, ReservationTtl = TimeSpan.FromMinutes(10) }), clock);

        await ledger.ReserveAsync(userId, null, "gpt-4o-mini", 900_000_000, TestContext.Current.CancellationToken); // never settled: its instance died
        await Assert.ThrowsAsync<BudgetExceededException>(() => ledger.ReserveAsync(userId, null, "gpt-4o-mini", 200_000_000, TestContext.Current.CancellationToken));

        clock.Advance(TimeSpan.FromMinutes(10).Add(TimeSpan.FromSeconds(1)));
        await ledger.ReserveAsync(userId, null, "gpt-4o-mini", 200_000_000, TestContext.Current.CancellationToken);
        Assert.Equal(200_000_000, (await ledger.GetStateAsync(userId, TestContext.Current.CancellationToken))!.Reserved);
    }

    [Theory]
    [MemberData(nameof(TestStore.Providers), MemberType = typeof(TestStore))]
    public async Task SpendingStartsAgainExactlyAtThePeriodBoundary(StoreProvider provider)
    {
        await using var store = await TestStore.CreateAsync(provider, postgres);
        await store.NewMigrator().MigrateAsync(TestContext.Current.CancellationToken);
        var anchor = new DateTimeOffset(2026, 1, 31, 12, 0, 0, TimeSpan.Zero);
        var clock = new ManualClock(anchor);
        var userId = await NewAccountAsync(store, clock);
        var ledger = new Ledger(store.Db, Budget, clock);

        clock.Set(anchor.AddDays(20));
        var spend = await ledger.ReserveAsync(userId, null, "gpt-4o-mini", 1_000_000_000, TestContext.Current.CancellationToken);
        await ledger.SettleAsync(spend, 1_000_000_000, 10, 10, "gpt-4o-mini");

        var boundary = new DateTimeOffset(2026, 2, 28, 12, 0, 0, TimeSpan.Zero);
        clock.Set(boundary.AddTicks(-10));
        Assert.Equal(0, (await ledger.GetStateAsync(userId, TestContext.Current.CancellationToken))!.Remaining);
        await Assert.ThrowsAsync<BudgetExceededException>(() => ledger.ReserveAsync(userId, null, "gpt-4o-mini", 1, TestContext.Current.CancellationToken));

        clock.Set(boundary);
        var state = (await ledger.GetStateAsync(userId, TestContext.Current.CancellationToken))!;
        Assert.Equal((0L, 1_000_000_000L, boundary), (state.Spent, state.Remaining, state.PeriodStart));
        await ledger.ReserveAsync(userId, null, "gpt-4o-mini", 1, TestContext.Current.CancellationToken);
    }

    private static async Task<List<Guid>> ReserveConcurrentlyAsync(Ledger[] ledgers, Guid userId, long amount, int attempts)
    {
        var start = new TaskCompletionSource();
        var tasks = Enumerable.Range(0, attempts).Select(i => Task.Run(async () =>
        {
            await start.Task;
            try
            {
                return (Guid?)await ledgers[i % ledgers.Length].ReserveAsync(userId, null, "gpt-4o-mini", amount, TestContext.Current.CancellationToken);
            }
            catch (BudgetExceededException)
            {
                return null;
            }
        })).ToList();
        start.SetResult();
        return (await Task.WhenAll(tasks)).Where(id => id is not null).Select(id => id!.Value).ToList();
    }

    private static async Task<Guid> NewAccountAsync(TestStore store, TimeProvider? time = null)
    {
        var userId = Guid.NewGuid();
        await using (var connection = await store.Db.OpenAsync(TestContext.Current.CancellationToken))
        {
            await connection.ExecuteAsync("INSERT INTO users (id, email, email_normalized, created_at, updated_at) VALUES (@userId, @email, @email, @now, @now)",
                new { userId, email = $"{userId:N}@example.com", now = DateTimeOffset.UtcNow });
        }

        await new Ledger(store.Db, Budget, time ?? TimeProvider.System).EnsureAccountAsync(userId, TestContext.Current.CancellationToken);
        return userId;
    }
}
