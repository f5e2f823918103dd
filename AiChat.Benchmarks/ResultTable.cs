using System.Globalization;
using System.Text;

namespace AiChat.Benchmarks;

/// <summary>One line of the table; empty cells where a figure does not apply.</summary>
public sealed record Row(string Id, string Scenario, string Runs = "", string P50 = "", string P95 = "", string P99 = "", string PerSecond = "", string Cpu = "", string Notes = "")
{
    public const string Missing = "—";

    /// <summary>A load's row: its percentiles, rate and the CPU per turn of API, proxy and stub (in that order, — where not involved).</summary>
    public static Row Of(string id, string scenario, LoadResult result, string? api, string? proxy, string? stub, string notes = "") => new(
        id,
        scenario,
        result.Count.ToString("#,0", CultureInfo.InvariantCulture),
        Http.Number(result.P50),
        Http.Number(result.P95),
        Http.Number(result.P99),
        Http.Number(result.PerSecond),
        string.Join(" · ", new[] { api, proxy, stub }.Select(name => name is null ? Missing : Http.Number(result.CpuMsPerTurn(name)))),
        notes);

    public static Row Skipped(string id, string scenario, string why) => new(id, scenario, Missing, Missing, Missing, Missing, Missing, Missing, why);
}

/// <summary>The one Markdown table the run prints, under a line naming the machine, the date and the commit.</summary>
public sealed class ResultTable
{
    private readonly List<Row> _rows = [];

    public IReadOnlyList<Row> Rows => _rows;

    public void Add(Row row) => _rows.Add(row);

    public string Render(string header, IEnumerable<string> footnotes)
    {
        var text = new StringBuilder();
        text.AppendLine(header).AppendLine();
        text.AppendLine("| id | scenario | runs | p50 ms | p95 ms | p99 ms | per s | CPU ms each: api · proxy · stub | notes |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---|---|");
        foreach (var row in _rows.OrderBy(row => row.Id, StringComparer.Ordinal))
        {
            text.AppendLine($"| {row.Id} | {row.Scenario} | {row.Runs} | {row.P50} | {row.P95} | {row.P99} | {row.PerSecond} | {row.Cpu} | {row.Notes} |");
        }

        foreach (var note in footnotes)
        {
            text.AppendLine().Append(note);
        }

        return text.AppendLine().ToString();
    }
}
