using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;

namespace FuseSharp.Fusion.Report;

/// <summary>
/// What a fusion stage reports about its work: groups of counts (e.g. target positions matched 1:1, MinED-matched,
/// 1:n, falling back; MinCE selections per candidate) and scalar values. Written next to the stage's output as
/// <c>NAME.json</c> and a small self-contained <c>NAME.html</c> (tables and SVG bars), and summarised on the console.
/// Thread-safe for <see cref="Add"/>.
/// </summary>
public sealed class StageReport(string stage)
{
    private readonly object _lock = new();
    private readonly List<(string Group, List<(string Label, long Count)> Items)> _groups = [];
    private readonly JsonObject _values = [];

    public string Stage { get; } = stage;

    /// <summary>Adds <paramref name="count"/> to a labelled count of a group (groups and labels keep first-use order).</summary>
    public void Add(string group, string label, long count = 1)
    {
        lock (_lock)
        {
            var g = _groups.FirstOrDefault(x => x.Group == group);
            if (g.Items is null)
            {
                g = (group, []);
                _groups.Add(g);
            }
            int i = g.Items.FindIndex(x => x.Label == label);
            if (i < 0) g.Items.Add((label, count));
            else g.Items[i] = (label, g.Items[i].Count + count);
        }
    }

    /// <summary>Sets a scalar value (a number, string or JSON node).</summary>
    public void Set(string name, JsonNode? value)
    {
        lock (_lock) _values[name] = value;
    }

    /// <summary>The counts of a group, in first-use order.</summary>
    public IReadOnlyList<(string Label, long Count)> Group(string group)
    {
        lock (_lock) return _groups.FirstOrDefault(x => x.Group == group).Items?.ToList() ?? [];
    }

    public JsonObject ToJson()
    {
        lock (_lock)
        {
            var groups = new JsonObject();
            foreach (var (group, items) in _groups)
            {
                long total = items.Sum(x => x.Count);
                groups[group] = new JsonObject(items.Select(x => new KeyValuePair<string, JsonNode?>(x.Label, new JsonObject
                {
                    ["count"] = x.Count,
                    ["share"] = total == 0 ? 0 : Math.Round((double)x.Count / total, 6),
                })));
            }
            return new JsonObject { ["stage"] = Stage, ["values"] = _values.DeepClone(), ["counts"] = groups };
        }
    }

    /// <summary>Lines for the console: one per group, "label share% (count)".</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        lock (_lock)
        {
            foreach (var (group, items) in _groups)
            {
                long total = items.Sum(x => x.Count);
                sb.Append(CultureInfo.InvariantCulture, $"{group}: ");
                sb.AppendJoin(", ", items.Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Label} {Share(x.Count, total)} ({x.Count})")));
                sb.AppendLine();
            }
        }
        return sb.ToString();
    }

    /// <summary>Writes <c>{pathWithoutExtension}.json</c> and <c>.html</c> atomically.</summary>
    public void Write(string pathWithoutExtension)
    {
        AtomicFile.WriteAllText(pathWithoutExtension + ".json", ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.WriteAllText(pathWithoutExtension + ".html", Html());
    }

    private string Html()
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>FuseSharp ").Append(Enc(Stage)).Append("</title>");
        sb.Append("<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:2px 10px;text-align:left}td.n{text-align:right}</style></head><body>");
        sb.Append("<h1>").Append(Enc(Stage)).Append("</h1>");
        lock (_lock)
        {
            if (_values.Count > 0)
            {
                sb.Append("<table>");
                foreach (var (k, v) in _values) sb.Append("<tr><th>").Append(Enc(k)).Append("</th><td>").Append(Enc(v?.ToJsonString() ?? "null")).Append("</td></tr>");
                sb.Append("</table>");
            }
            foreach (var (group, items) in _groups)
            {
                long total = items.Sum(x => x.Count);
                sb.Append("<h2>").Append(Enc(group)).Append("</h2><table><tr><th></th><th>count</th><th>share</th><th></th></tr>");
                foreach (var (label, count) in items)
                {
                    double share = total == 0 ? 0 : (double)count / total;
                    sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{Enc(label)}</td><td class=\"n\">{count}</td><td class=\"n\">{Share(count, total)}</td>");
                    sb.Append(CultureInfo.InvariantCulture, $"<td><svg width=\"300\" height=\"14\"><rect width=\"{share * 300:0.#}\" height=\"14\" fill=\"#4a7ab5\"/></svg></td></tr>");
                }
                sb.Append("</table>");
            }
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static string Share(long count, long total) =>
        (total == 0 ? 0 : 100.0 * count / total).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    private static string Enc(string s) => WebUtility.HtmlEncode(s);
}
