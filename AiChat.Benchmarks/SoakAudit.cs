extern alias api;

using System.Globalization;
using System.Text.Json;
using api::AiChat.Api.Billing;
using Dapper;
using Microsoft.Extensions.Options;

namespace AiChat.Benchmarks;

/// <summary>One of the soak's end checks: its name, whether it held, and the figures that show it.</summary>
public sealed record SoakCheck(string Name, bool Passed, string Detail)
{
    public const string NoLostMessages = "zero lost messages";
    public const string BalancedLedger = "balanced ledger";
    public const string NoReservationLeft = "no reservation left";
    public const string NoRunningTurnLeft = "no running turn left";
    public const string ResidentMemory = "resident memory";
    public const string ExpectedAnswers = "expected answers, well-formed streams";
    public const string FaultsInjected = "faults injected";

    public static readonly string[] All = [NoLostMessages, BalancedLedger, NoReservationLeft, NoRunningTurnLeft, ResidentMemory, ExpectedAnswers, FaultsInjected];
}

/// <summary>
/// The end of the soak, once every turn has ended: the history read back over HTTP against what the clients were told,
/// and the store read directly for the ledger and the turns (an audit, not load).
/// </summary>
public sealed class SoakAudit(MeasuredSystem system, HttpClient http)
{
    private const int Shown = 5;

    /// <summary>Every accepted user message is in its conversation's history; every answer seen complete is stored complete with the text the client got.</summary>
    public async Task<SoakCheck> LostMessagesAsync(SoakRecord record, IEnumerable<SoakUser> users)
    {
        var stored = new Dictionary<Guid, List<JsonElement>>();
        foreach (var user in users.Select(u => u.User))
        {
            foreach (var conversation in user.Conversations)
            {
                stored[conversation] = await HistoryAsync(user, conversation);
            }
        }

        var missing = record.Accepted
            .Where(accepted => !stored[accepted.Conversation].Any(m => m.GetProperty("role").GetString() == "user" && m.GetProperty("content").GetString() == accepted.Content))
            .Select(accepted => $"user message of turn {accepted.Turn} missing")
            .ToList();
        foreach (var answer in record.Completed)
        {
            var message = stored[answer.Conversation].FirstOrDefault(m => m.GetProperty("id").GetGuid() == answer.MessageId);
            if (message.ValueKind == JsonValueKind.Undefined)
            {
                missing.Add($"answer {answer.MessageId} missing");
            }
            else if (message.GetProperty("status").GetString() != "complete" || message.GetProperty("content").GetString() != answer.Text)
            {
                missing.Add($"answer {answer.MessageId} stored as {message.GetProperty("status").GetString()} with other text than the client received");
            }
        }

        return new SoakCheck(SoakCheck.NoLostMessages, missing.Count == 0, Invariant(
            $"{record.Accepted.Count:#,0} accepted user messages and {record.Completed.Count:#,0} answers seen complete, read back from {stored.Values.Sum(m => m.Count):#,0} stored messages; {missing.Count} lost or changed{Examples(missing)}"));
    }

    /// <summary>
    /// The ledger balances three ways. Every settled charge is its recorded tokens at the model's price (capped at its
    /// reservation) and belongs to a turn; each user's spent and usage, over HTTP, are the sum of their settled charges;
    /// and each turn's charges equal the usage stored on its answer — a turn cut off after its model had begun (a cancel,
    /// a dropped or malformed stream) too: its answer records the partial charge the metering settled.
    /// </summary>
    public async Task<SoakCheck> LedgerAsync(IEnumerable<SoakUser> users)
    {
        await using var connection = await system.Db.OpenAsync();
        var turns = (await connection.QueryAsync<TurnUsage>(
            """
            SELECT t.status AS Status, t.error_code AS ErrorCode, CAST(m.cost_nanousd AS BIGINT) AS RecordedCost,
                CAST(m.prompt_tokens AS BIGINT) AS RecordedPrompt, CAST(m.completion_tokens AS BIGINT) AS RecordedCompletion,
                (SELECT CAST(SUM(l.amount_nanousd) AS BIGINT) FROM ledger_entries l WHERE l.turn_id = t.id AND l.state = 'settled') AS Charged,
                (SELECT CAST(SUM(l.prompt_tokens) AS BIGINT) FROM ledger_entries l WHERE l.turn_id = t.id AND l.state = 'settled') AS ChargedPrompt,
                (SELECT CAST(SUM(l.completion_tokens) AS BIGINT) FROM ledger_entries l WHERE l.turn_id = t.id AND l.state = 'settled') AS ChargedCompletion
            FROM turns t LEFT JOIN messages m ON m.id = t.assistant_message_id
            """)).AsList();
        var unbalanced = turns.Where(t => !t.Balanced)
            .Select(t => Invariant($"a {t.Status} turn ({t.ErrorCode ?? "no error"}) charged {t.Charged ?? 0} nano-USD for {t.ChargedPrompt ?? 0}+{t.ChargedCompletion ?? 0} tokens, its answer records {t.RecordedCost?.ToString(CultureInfo.InvariantCulture) ?? "none"} for {t.RecordedPrompt ?? 0}+{t.RecordedCompletion ?? 0}"))
            .ToList();
        var cutOff = turns.Where(t => t.Status != "completed" && t.Charged > 0).ToList();

        var prices = new PriceTable(Options.Create(new BillingOptions()));
        var charges = (await connection.QueryAsync<Charge>(
            """
            SELECT user_id AS UserId, model AS Model, CAST(amount_nanousd AS BIGINT) AS Amount, CAST(reserved_nanousd AS BIGINT) AS Reserved,
                CAST(prompt_tokens AS BIGINT) AS Prompt, CAST(completion_tokens AS BIGINT) AS Completion
            FROM ledger_entries WHERE state = 'settled'
            """)).AsList();
        var mispriced = charges.Where(c => c.Amount != Math.Min(c.Reserved, prices.CostNanos(c.Model, c.Prompt, c.Completion)))
            .Select(c => Invariant($"a charge of {c.Amount} nano-USD for {c.Prompt}+{c.Completion} tokens of {c.Model}"))
            .ToList();
        var orphans = await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM ledger_entries l WHERE l.turn_id IS NULL OR NOT EXISTS (SELECT 1 FROM turns t WHERE t.id = l.turn_id)");

        // What each user is told over HTTP: spent and usage are the settled charges, nothing is reserved.
        var misreported = new List<string>();
        foreach (var user in users.Select(u => u.User))
        {
            var settled = charges.Where(c => c.UserId == user.Id).ToList();
            var spent = PriceTable.ToUsd(settled.Sum(c => c.Amount));
            var budget = await Http.GetJsonAsync(http, system.Gateway.Address, "/api/v1/user/budget", user.Token);
            var usage = (await Http.GetJsonAsync(http, system.Gateway.Address, "/api/v1/user/usage?group_by=model", user.Token)).GetProperty("totals");
            if (budget.GetProperty("spent_usd").GetDecimal() != spent || budget.GetProperty("reserved_usd").GetDecimal() != 0
                || usage.GetProperty("cost_usd").GetDecimal() != spent || usage.GetProperty("calls").GetInt64() != settled.Count
                || usage.GetProperty("prompt_tokens").GetInt64() != settled.Sum(c => c.Prompt) || usage.GetProperty("completion_tokens").GetInt64() != settled.Sum(c => c.Completion))
            {
                misreported.Add(Invariant($"user {user.Id}: budget {budget.GetRawText()}, usage {usage.GetRawText()}, settled {spent} USD in {settled.Count} charges"));
            }
        }

        var problems = unbalanced.Concat(mispriced).Concat(misreported).Concat(orphans > 0 ? [Invariant($"{orphans} ledger entries belong to no turn")] : []).ToList();
        return new SoakCheck(SoakCheck.BalancedLedger, problems.Count == 0, Invariant(
            $"{charges.Count:#,0} settled charges, {PriceTable.ToUsd(charges.Sum(c => c.Amount)):0.######} USD: {mispriced.Count} not their tokens' price, {orphans} without a turn; {misreported.Count} of {users.Count()} users told another spent, reserved or usage over HTTP; {unbalanced.Count} of {turns.Count:#,0} turns whose charges differ from their answer's usage{Examples(problems)}; {cutOff.Count} turns cut off mid-answer ({string.Join(", ", cutOff.GroupBy(t => t.ErrorCode).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} ×{g.Count()}"))}) were charged {cutOff.Sum(t => t.Charged ?? 0):#,0} nano-USD for their partial output, recorded on their answers"));
    }

    public async Task<SoakCheck> ReservationsAsync()
    {
        await using var connection = await system.Db.OpenAsync();
        var held = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ledger_entries WHERE state = 'held'");
        var released = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ledger_entries WHERE state = 'released'");
        return new SoakCheck(SoakCheck.NoReservationLeft, held == 0, Invariant($"{held} reservations still held; {released:#,0} released without a charge"));
    }

    /// <summary>Turns still running, the store polled until none is or the deadline passes.</summary>
    public async Task<SoakCheck> RunningTurnsAsync(TimeSpan deadline)
    {
        var started = DateTime.UtcNow;
        long running, all;
        while (true)
        {
            await using var connection = await system.Db.OpenAsync();
            running = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM turns WHERE status NOT IN ('completed', 'failed', 'cancelled')");
            all = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM turns");
            if (running == 0 || DateTime.UtcNow - started > deadline)
            {
                break;
            }

            await Task.Delay(200);
        }

        return new SoakCheck(SoakCheck.NoRunningTurnLeft, running == 0, Invariant(
            $"{running} of {all:#,0} turns not ended {(DateTime.UtcNow - started).TotalSeconds:0.0} s after the load stopped (deadline {deadline.TotalSeconds:0} s)"));
    }

    private async Task<List<JsonElement>> HistoryAsync(BenchUser user, Guid conversation)
    {
        var messages = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var path = $"/api/v1/conversations/{conversation}/messages?limit=200" + (cursor is null ? "" : $"&before={Uri.EscapeDataString(cursor)}");
            var page = await Http.GetJsonAsync(http, system.Gateway.Address, path, user.Token);
            messages.AddRange(page.GetProperty("messages").EnumerateArray());
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        return messages;
    }

    private static string Examples(IReadOnlyList<string> problems) =>
        problems.Count == 0 ? "" : ": " + string.Join("; ", problems.Take(Shown)) + (problems.Count > Shown ? "; …" : "");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    // Settable properties: Dapper converts SQLite's 64-bit integers only when it sets properties.
    private sealed class TurnUsage
    {
        public string Status { get; set; } = "";

        public string? ErrorCode { get; set; }

        public long? RecordedCost { get; set; }

        public long? RecordedPrompt { get; set; }

        public long? RecordedCompletion { get; set; }

        public long? Charged { get; set; }

        public long? ChargedPrompt { get; set; }

        public long? ChargedCompletion { get; set; }

        public bool Balanced => (Charged ?? 0) == (RecordedCost ?? 0) && (ChargedPrompt ?? 0) == (RecordedPrompt ?? 0) && (ChargedCompletion ?? 0) == (RecordedCompletion ?? 0);
    }

    private sealed class Charge
    {
        public Guid UserId { get; set; }

        public string Model { get; set; } = "";

        public long Amount { get; set; }

        public long Reserved { get; set; }

        public long Prompt { get; set; }

        public long Completion { get; set; }
    }
}
