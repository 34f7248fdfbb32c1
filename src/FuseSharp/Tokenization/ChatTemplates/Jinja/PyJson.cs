using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// JSON in and out with Python's semantics: <see cref="FromJson"/> is <c>json.loads</c> (integers stay ints,
/// numbers with a fraction or exponent become floats), <see cref="Dumps"/> is <c>json.dumps</c> with its
/// <c>ensure_ascii</c>, <c>indent</c>, <c>separators</c> and <c>sort_keys</c> options (transformers' <c>tojson</c>).
/// </summary>
public static class PyJson
{
    /// <summary>Converts parsed JSON (or plain .NET values) to interpreter values.</summary>
    public static object? FromJson(JsonNode? node, int depth = 0)
    {
        if (depth > 512) throw Py.Unsupported("JSON input nested more than 512 levels");
        switch (node)
        {
            case null:
                return null;
            case JsonObject o:
                try
                {
                    var d = new PyDict(o.Count);
                    foreach (var (k, v) in o) d.Set(k, FromJson(v, depth + 1));
                    return d;
                }
                catch (ArgumentException e)
                {
                    throw new ChatTemplateException($"a JSON object repeats a key ({e.Message.Split(" (Parameter", 2)[0]})", ChatTemplateErrorKind.Runtime);
                }
            case JsonArray a:
                var items = new List<object?>(a.Count);
                foreach (var v in a) items.Add(FromJson(v, depth + 1));
                return new PyList(items);
            case JsonValue v:
                return FromJsonValue(v);
            default:
                throw Py.Unsupported($"unexpected JSON node {node.GetType().Name}");
        }
    }

    private static object? FromJsonValue(JsonValue v)
    {
        if (v.TryGetValue<JsonElement>(out var el))
        {
            switch (el.ValueKind)
            {
                case JsonValueKind.String: return el.GetString();
                case JsonValueKind.True: return Py.True;
                case JsonValueKind.False: return Py.False;
                case JsonValueKind.Null: return null;
                case JsonValueKind.Number:
                    var raw = el.GetRawText();
                    if (raw.AsSpan().IndexOfAny(".eE") < 0)
                    {
                        return el.TryGetInt64(out var l) ? l : Py.Int(BigInteger.Parse(raw, CultureInfo.InvariantCulture));
                    }
                    return double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
                default:
                    return FromJson(JsonNode.Parse(el.GetRawText()));
            }
        }
        if (v.TryGetValue<string>(out var s)) return s;
        if (v.TryGetValue<bool>(out var b)) return Py.Bool(b);
        if (v.TryGetValue<long>(out var i64)) return i64;
        if (v.TryGetValue<int>(out var i32)) return (long)i32;
        if (v.TryGetValue<double>(out var f64)) return f64;
        if (v.TryGetValue<float>(out var f32)) return (double)f32;
        if (v.TryGetValue<decimal>(out var dec)) return (double)dec;
        return FromJson(JsonNode.Parse(v.ToJsonString()));
    }

    /// <summary>Converts a .NET value (string, bool, numbers, dictionaries, lists, JSON nodes) to an interpreter value.</summary>
    public static object? FromClr(object? value, int depth = 0)
    {
        if (depth > 512) throw Py.Unsupported("value nested more than 512 levels");
        return value switch
        {
            null => null,
            JsonNode n => FromJson(n, depth),
            JsonElement e => FromJson(JsonNode.Parse(e.GetRawText()), depth),
            string s => s,
            bool b => Py.Bool(b),
            int i => (long)i,
            long l => l,
            short or sbyte or byte or ushort or uint => Convert.ToInt64(value, CultureInfo.InvariantCulture),
            ulong u => Py.Int(u),
            BigInteger bi => Py.Int(bi),
            double d => d,
            float f => (double)f,
            decimal m => (double)m,
            char c => c.ToString(),
            IDictionary dict => FromDictionary(dict, depth),
            IEnumerable seq => new PyList(seq.Cast<object?>().Select(x => FromClr(x, depth + 1)).ToList()),
            _ => throw Py.Unsupported($"cannot pass a {value.GetType().Name} to a chat template (use JSON values, strings, numbers, lists or dictionaries)"),
        };
    }

    private static PyDict FromDictionary(IDictionary dict, int depth)
    {
        var d = new PyDict(dict.Count);
        foreach (DictionaryEntry e in dict) d.Set(FromClr(e.Key, depth + 1), FromClr(e.Value, depth + 1));
        return d;
    }

    /// <summary>
    /// Python's <c>json.dumps(value, ensure_ascii=..., indent=..., separators=..., sort_keys=...)</c>. <paramref name="indent"/>
    /// is null for single-line output, else the indent unit ("" for indent=0); null separators take Python's defaults.
    /// </summary>
    public static string Dumps(object? value, bool ensureAscii, string? indent, string? itemSeparator, string? keySeparator, bool sortKeys)
    {
        itemSeparator ??= indent is null ? ", " : ",";
        keySeparator ??= ": ";
        var sb = new StringBuilder();
        new Encoder(sb, ensureAscii, indent, itemSeparator, keySeparator, sortKeys).Encode(value, 0);
        return sb.ToString();
    }

    private sealed class Encoder(StringBuilder sb, bool ensureAscii, string? indent, string itemSep, string keySep, bool sortKeys)
    {
        public void Encode(object? v, int level)
        {
            if (level > 512) throw Py.ValueError("Circular reference detected");
            switch (v)
            {
                case null: sb.Append("null"); break;
                case bool b: sb.Append(b ? "true" : "false"); break;
                case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
                case BigInteger bi: sb.Append(bi.ToString(CultureInfo.InvariantCulture)); break;
                case double d: sb.Append(FloatText(d)); break;
                case string or Markup: WriteString(Py.AsString(v)!); break;
                case PyList list:
                    WriteContainer('[', ']', list.Items, item => Encode(item, level + 1), level);
                    break;
                case PyDict dict:
                    var items = sortKeys ? Py.StableSort(dict.Items.ToList(), p => p.Key, descending: false) : dict.Items.ToList();
                    WriteContainer('{', '}', items, p =>
                    {
                        WriteString(KeyText(p.Key));
                        sb.Append(keySep);
                        Encode(p.Value, level + 1);
                    }, level);
                    break;
                default:
                    throw Py.TypeError($"Object of type {Py.TypeName(v)} is not JSON serializable");
            }
        }

        /// <summary>Python's layout of a list or dict: "[]" when empty, else items on one line or one per indented line.</summary>
        private void WriteContainer<T>(char open, char close, List<T> items, Action<T> writeItem, int level)
        {
            sb.Append(open);
            if (items.Count == 0)
            {
                sb.Append(close);
                return;
            }
            string? newline = indent is null ? null : "\n" + PyStr.Repeat(indent, level + 1);
            sb.Append(newline);
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0) sb.Append(itemSep).Append(newline);
                writeItem(items[i]);
            }
            if (indent is not null) sb.Append('\n').Append(PyStr.Repeat(indent, level));
            sb.Append(close);
        }

        private static string FloatText(double d) =>
            double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyFormat.FloatRepr(d);

        private static string KeyText(object? k) => k switch
        {
            string s => s,
            Markup m => m.Value,
            double d => FloatText(d),
            bool b => b ? "true" : "false",
            null => "null",
            long or BigInteger => Py.Str(k),
            _ => throw Py.TypeError($"keys must be str, int, float, bool or None, not {Py.TypeName(k)}"),
        };

        private void WriteString(string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < ' ' || (ensureAscii && c > '~')) sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
