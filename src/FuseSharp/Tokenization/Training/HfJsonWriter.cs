using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Tokenization.Training;

/// <summary>
/// Writes JSON the way Hugging Face's files are written: <c>tokenizer.json</c> by serde_json's pretty printer and
/// <c>tokenizer_config.json</c> by Python's <c>json.dumps(indent=2, ensure_ascii=False)</c>. Both put every member and
/// array item on its own line with two-space indentation, write "[]" / "{}" for empty containers, leave non-ASCII text
/// as it is and escape only quotes, backslashes and control characters (<c>\n</c> style where one exists, else
/// <c>\u00XX</c>). Floating-point numbers use the shortest round-trip form with a ".0" on integral values, as ryu does.
/// </summary>
internal static class HfJsonWriter
{
    public static string Write(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonNode? node, int indent)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject o:
                Container(sb, '{', '}', o.Select(kv => ((string?)kv.Key, kv.Value)), o.Count, indent);
                break;
            case JsonArray a:
                Container(sb, '[', ']', a.Select(v => ((string?)null, v)), a.Count, indent);
                break;
            case JsonValue v:
                Value(sb, v);
                break;
        }
    }

    // An object (items with keys) or an array: one item per line, "{}" / "[]" when empty.
    private static void Container(StringBuilder sb, char open, char close, IEnumerable<(string? Key, JsonNode? Value)> items, int count, int indent)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }
        sb.Append('\n');
        int i = 0;
        foreach (var (key, value) in items)
        {
            sb.Append(' ', (indent + 1) * 2);
            if (key is not null)
            {
                String(sb, key);
                sb.Append(": ");
            }
            Write(sb, value, indent + 1);
            sb.Append(++i < count ? ",\n" : "\n");
        }
        sb.Append(' ', indent * 2).Append(close);
    }

    private static void Value(StringBuilder sb, JsonValue v)
    {
        if (v.TryGetValue<string>(out var s)) String(sb, s);
        else if (v.TryGetValue<bool>(out var b)) sb.Append(b ? "true" : "false");
        else if (v.TryGetValue<int>(out var i)) sb.Append(i.ToString(CultureInfo.InvariantCulture));
        else if (v.TryGetValue<long>(out var l)) sb.Append(l.ToString(CultureInfo.InvariantCulture));
        else if (v.TryGetValue<double>(out var d)) sb.Append(Float(d));
        else if (v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number) sb.Append(e.GetRawText());
        else throw new ArgumentException($"unsupported JSON value {v}", nameof(v));
    }

    /// <summary>ryu's shortest form: "-3.25", "0.0", "-10.0", "1e-7".</summary>
    internal static string Float(double d)
    {
        if (!double.IsFinite(d)) throw new ArgumentException("JSON has no NaN or infinity", nameof(d));
        var r = d.ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            var exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            return string.Create(CultureInfo.InvariantCulture, $"{r[..e]}e{exponent}");
        }
        return r.Contains('.', StringComparison.Ordinal) ? r : r + ".0";
    }

    // Escape sequences by character ('"', '\\' and the controls), null where the character is written as it is.
    private static readonly string?[] Escapes = BuildEscapes();

    private static string?[] BuildEscapes()
    {
        var table = new string?['\\' + 1];
        for (int c = 0; c < 0x20; c++) table[c] = "\\u" + c.ToString("x4", CultureInfo.InvariantCulture);
        foreach (var (c, e) in new[] { ('\b', "\\b"), ('\t', "\\t"), ('\n', "\\n"), ('\f', "\\f"), ('\r', "\\r"), ('"', "\\\""), ('\\', "\\\\") })
            table[c] = e;
        return table;
    }

    private static void String(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            if (c < Escapes.Length && Escapes[c] is { } escape) sb.Append(escape);
            else sb.Append(c);
        }
        sb.Append('"');
    }
}
