using System.Globalization;
using System.Numerics;
using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// jinja2's built-in filters with their Python semantics (including which ones return one-shot generators:
/// <c>map</c>, <c>select</c>/<c>reject</c>, <c>selectattr</c>/<c>rejectattr</c>, <c>unique</c>, <c>items</c>, <c>batch</c>,
/// <c>slice</c> and <c>reverse</c> of a non-string), with <c>tojson</c> replaced by transformers' version
/// (<c>json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>, no HTML escaping).
/// Filters jinja2 has but whose output FuseSharp cannot reproduce (<c>random</c>, <c>pprint</c>, <c>urlize</c>, ...)
/// raise an Unsupported error when they run; unknown names raise jinja2's "No filter named".
/// </summary>
internal static class Filters
{
    private static readonly HashSet<string> Known =
    [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat", "first",
        "float", "forceescape", "format", "groupby", "indent", "int", "join", "last", "length", "list", "lower", "items", "map", "min",
        "max", "pprint", "random", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
        "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
        "xmlattr", "tojson",
    ];

    /// <summary>True for the filter names jinja2 (with transformers' <c>tojson</c>) defines (the <c>filter</c> test).</summary>
    public static bool Exists(string name) => Known.Contains(name);

    public static object? Apply(RenderState state, string name, object? v, Args a)
    {
        switch (name)
        {
            case "abs":
                a.Check(name);
                return v switch
                {
                    long l => l == long.MinValue ? Py.Int(BigInteger.Abs(l)) : Math.Abs(l),
                    bool b => b ? 1L : 0L,
                    double d => Math.Abs(d),
                    BigInteger bi => Py.Int(BigInteger.Abs(bi)),
                    _ => throw Py.TypeError($"bad operand type for abs(): '{Py.TypeName(v)}'"),
                };
            case "attr":
                a.Check(name, "name");
                var attrName = Py.AsString(a.Get(0, "name", null)) ?? throw Py.TypeError("attribute name must be a string");
                return Py.GetAttrOnly(v, attrName);
            case "batch":
                a.Check(name, "linecount", "fill_with");
                return new PyIterator(Batch(v, Py.Index(a.Get(0, "linecount", null), "linecount"), a.Get(1, "fill_with", null)), "generator");
            case "capitalize":
                a.Check(name);
                return PyStr.Capitalize(SoftStr(v));
            case "center":
                a.Check(name, "width");
                return PyStr.Center(SoftStr(v), Py.Index(a.Get(0, "width", 80L), "width"), " ");
            case "count" or "length":
                a.Check(name);
                return Py.Len(v);
            case "d" or "default":
                a.Check(name, "default_value", "boolean");
                return v is Undefined || (Py.Truthy(a.Get(1, "boolean", Py.False)) && !Py.Truthy(v)) ? a.Get(0, "default_value", "") : v;
            case "dictsort":
                return DictSort(v, a);
            case "e" or "escape":
                a.Check(name);
                return v is Markup ? v : new Markup(PyStr.HtmlEscape(Py.Str(v)));
            case "forceescape":
                a.Check(name);
                return new Markup(PyStr.HtmlEscape(Py.Str(v)));
            case "filesizeformat":
                a.Check(name, "binary");
                return FileSize(v, Py.Truthy(a.Get(0, "binary", Py.False)));
            case "first":
                a.Check(name);
                foreach (var item in Py.Iterate(v)) return item;
                return Undefined.WithHint("No first item, sequence was empty.");
            case "last":
                a.Check(name);
                foreach (var item in Reversed(v) ?? throw Py.TypeError($"'{Py.TypeName(v)}' object is not reversible")) return item;
                return Undefined.WithHint("No last item, sequence was empty.");
            case "float":
                a.Check(name, "default");
                return ToFloat(v) ?? a.Get(0, "default", 0.0);
            case "int":
                a.Check(name, "default", "base");
                return ToInt(v, Py.Index(a.Get(1, "base", 10L), "base")) ?? a.Get(0, "default", 0L);
            case "format":
                if (a.Count > 0 && a.HasKeywords) throw Py.Unsupported("FilterArgumentError: can't handle positional and keyword arguments at the same time");
                object? fmtArgs = a.HasKeywords ? Globals.MakeDict("format", new Args([], a.Keywords)) : new PyList(a.Positional.ToList(), isTuple: true);
                return Py.Mod(v is Markup ? v : SoftStr(v), fmtArgs);
            case "groupby":
                return GroupBy(v, a);
            case "indent":
                a.Check(name, "width", "first", "blank");
                return Indent(v, a.Get(0, "width", 4L), Py.Truthy(a.Get(1, "first", Py.False)), Py.Truthy(a.Get(2, "blank", Py.False)));
            case "items":
                a.Check(name);
                return v switch
                {
                    Undefined => new PyIterator([], "generator"),
                    PyDict d => new PyIterator(d.Items.Select(p => (object?)PyList.Tuple(p.Key, p.Value)), "generator"),
                    _ => throw Py.TypeError("Can only get item pairs from a mapping."),
                };
            case "join":
                return Join(v, a);
            case "list":
                a.Check(name);
                return new PyList(Py.Iterate(v).ToList());
            case "lower":
                a.Check(name);
                return PyStr.Lower(SoftStr(v));
            case "upper":
                a.Check(name);
                return PyStr.Upper(SoftStr(v));
            case "map":
                return Map(state, v, a);
            case "min" or "max":
                return MinMax(v, a, name == "max");
            case "reject" or "select" or "rejectattr" or "selectattr":
                return SelectOrReject(state, v, a, select: name.StartsWith('s'), lookupAttr: name.EndsWith("attr", StringComparison.Ordinal));
            case "replace":
                a.Check(name, "old", "new", "count");
                if (!a.TryGet(0, "old", out var old) || !a.TryGet(1, "new", out var repl)) throw Py.TypeError("replace() missing required argument 'old' or 'new'");
                var count = a.Get(2, "count", null);
                return PyStr.Replace(Py.Str(v), Py.Str(old), Py.Str(repl), count is null ? -1 : Py.Index(count, "count"));
            case "reverse":
                a.Check(name);
                if (Py.AsString(v) is { } rs) return PyStr.Slice(rs, PyStr.Length(rs) - 1, PyStr.Length(rs), -1);
                if (Reversed(v) is { } rev) return new PyIterator(rev, v is PyList { IsTuple: false } ? "list_reverseiterator" : "reversed");
                var copy = Py.Iterate(v).ToList();
                copy.Reverse();
                return new PyList(copy);
            case "round":
                return Round(v, a);
            case "safe":
                a.Check(name);
                return v is Markup ? v : new Markup(Py.Str(v));
            case "slice":
                a.Check(name, "slices", "fill_with");
                return new PyIterator(SliceFilter(v, Py.Index(a.Get(0, "slices", null), "slices"), a.Get(1, "fill_with", null)), "generator");
            case "sort":
                return Sort(v, a);
            case "string":
                a.Check(name);
                return v is Markup ? v : SoftStr(v);
            case "sum":
                return Sum(v, a);
            case "title":
                a.Check(name);
                return Title(SoftStr(v));
            case "trim":
                a.Check(name, "chars");
                var chars = a.Get(0, "chars", null);
                return PyStr.Strip(SoftStr(v), chars is null ? null : Py.AsString(chars) ?? throw Py.TypeError("strip arg must be None or str"));
            case "truncate":
                return Truncate(v, a);
            case "unique":
                return Unique(v, a);
            case "wordcount":
                a.Check(name);
                return (long)WordCount(SoftStr(v));
            case "tojson":
                return ToJson(v, a);
            case "pprint" or "random" or "striptags" or "urlencode" or "urlize" or "wordwrap" or "xmlattr":
                throw Py.Unsupported($"the '{name}' filter is not supported in chat templates");
            default:
                throw new ChatTemplateException($"No filter named '{name}'.", ChatTemplateErrorKind.Syntax);
        }
    }

    /// <summary>jinja2's <c>soft_str</c>: str() unless already a string.</summary>
    private static string SoftStr(object? v) => Py.AsString(v) ?? Py.Str(v);

    /// <summary>Python's <c>reversed(v)</c> for the types that support it; null where it raises TypeError.</summary>
    private static IEnumerable<object?>? Reversed(object? v) => v switch
    {
        PyList l => Enumerable.Range(0, l.Count).Select(i => l[l.Count - 1 - i]),
        string or Markup => PyStr.CodePoints(Py.AsString(v)!).Reverse(),
        PyDict d => d.Keys.Reverse(),
        PyDictView w => w.Iterate().Reverse(),
        PyRange r => Enumerable.Range(0, (int)r.Length).Select(i => (object?)r[r.Length - 1 - i]),
        Undefined => [],
        _ => null,
    };

    // ---- attribute getters (make_attrgetter / make_multi_attrgetter) ---------------------------------------------

    private static object?[] AttributeParts(object? attribute) => attribute switch
    {
        null => [],
        string s => s.Split('.').Select(p => p.Length > 0 && p.All(char.IsAsciiDigit) ? (object?)long.Parse(p, CultureInfo.InvariantCulture) : p).ToArray(),
        _ => [attribute],
    };

    /// <summary>jinja2's <c>make_attrgetter</c>: dotted path through getitem, optional default for an undefined result, optional lower-casing.</summary>
    private static Func<object?, object?> AttrGetter(object? attribute, bool ignoreCase = false, object? fallback = null)
    {
        var parts = AttributeParts(attribute);
        return item =>
        {
            foreach (var part in parts)
            {
                item = Py.GetItem(item, part);
                if (fallback is not null && item is Undefined) item = fallback;
            }
            return ignoreCase && item is string s ? PyStr.Lower(s) : item;
        };
    }

    /// <summary>jinja2's <c>make_multi_attrgetter</c> ("age,name"): a list of keys compared lexicographically.</summary>
    private static Func<object?, object?> MultiAttrGetter(object? attribute, bool ignoreCase)
    {
        var getters = (attribute is string s ? s.Split(',').Select(x => (object?)x) : [attribute]).Select(p => AttrGetter(p, ignoreCase)).ToList();
        return item => new PyList(getters.Select(g => g(item)).ToList());
    }

    // ---- filters with more logic ----------------------------------------------------------------------------------

    private static IEnumerable<object?> Batch(object? v, long size, object? fill)
    {
        if (size <= 0) throw Py.Unsupported("batch() needs a positive line count");
        var tmp = new List<object?>();
        foreach (var item in Py.Iterate(v))
        {
            if (tmp.Count == size)
            {
                yield return new PyList(tmp);
                tmp = [];
            }
            tmp.Add(item);
        }
        if (tmp.Count > 0)
        {
            if (fill is not null) while (tmp.Count < size) tmp.Add(fill);
            yield return new PyList(tmp);
        }
    }

    private static IEnumerable<object?> SliceFilter(object? v, long slices, object? fill)
    {
        var seq = Py.Iterate(v).ToList();
        if (slices <= 0) throw Py.ZeroDivision("integer division or modulo by zero");
        long perSlice = seq.Count / slices, withExtra = seq.Count % slices, offset = 0;
        for (long n = 0; n < slices; n++)
        {
            long start = offset + n * perSlice;
            if (n < withExtra) offset++;
            long end = offset + (n + 1) * perSlice;
            var tmp = seq.GetRange((int)start, (int)(end - start));
            if (fill is not null && n >= withExtra) tmp.Add(fill);
            yield return new PyList(tmp);
        }
    }

    private static object DictSort(object? v, Args a)
    {
        a.Check("dictsort", "case_sensitive", "by", "reverse");
        if (v is Undefined u) throw u.Fail();
        if (v is not PyDict d) throw Py.Unsupported($"AttributeError: '{Py.TypeName(v)}' object has no attribute 'items'");
        bool caseSensitive = Py.Truthy(a.Get(0, "case_sensitive", Py.False));
        var by = Py.Str(a.Get(1, "by", "key"));
        int pos = by switch { "key" => 0, "value" => 1, _ => throw Py.Unsupported("FilterArgumentError: You can only sort by either \"key\" or \"value\"") };
        object? Key(KeyValuePair<object?, object?> p)
        {
            var x = pos == 0 ? p.Key : p.Value;
            return !caseSensitive && x is string s ? PyStr.Lower(s) : x;
        }
        var items = Py.StableSort(d.Items.ToList(), Key, descending: Py.Truthy(a.Get(2, "reverse", Py.False)));
        return new PyList(items.Select(p => (object?)PyList.Tuple(p.Key, p.Value)).ToList());
    }

    private static object? ToFloat(object? v) => v switch
    {
        double d => d,
        long l => (double)l,
        BigInteger => Py.ToDouble(v),
        bool b => b ? 1.0 : 0.0,
        string or Markup => PyFormat.TryParseFloat(Py.AsString(v)!, out var f) ? f : null,
        Undefined u => throw u.Fail(),
        _ => null,
    };

    /// <summary>jinja2's <c>do_int</c>: <c>int(value, base)</c> for strings, <c>int(value)</c> otherwise, then <c>int(float(value))</c>; null for the default.</summary>
    private static object? ToInt(object? v, long radix)
    {
        switch (v)
        {
            case long or BigInteger: return v;
            case bool b: return b ? 1L : 0L;
            case double d:
                if (double.IsNaN(d)) return null;
                if (double.IsInfinity(d)) throw Py.Overflow("cannot convert float infinity to integer");
                return Py.Int(new BigInteger(Math.Truncate(d)));
            case string or Markup:
                var s = Py.AsString(v)!;
                if (PyFormat.TryParseInt(s, radix, out var n)) return n;
                if (PyFormat.TryParseFloat(s, out var f) && double.IsFinite(f)) return Py.Int(new BigInteger(Math.Truncate(f)));
                return null;
            case Undefined u:
                throw u.Fail();
            default:
                return null;
        }
    }

    private static object GroupBy(object? v, Args a)
    {
        a.Check("groupby", "attribute", "default", "case_sensitive");
        if (!a.TryGet(0, "attribute", out var attribute)) throw Py.TypeError("groupby() missing required argument 'attribute'");
        var fallback = a.Get(1, "default", null);
        bool caseSensitive = Py.Truthy(a.Get(2, "case_sensitive", Py.False));
        var key = AttrGetter(attribute, !caseSensitive, fallback);
        var sorted = Py.StableSort(Py.Iterate(v).ToList(), key, descending: false);
        var groups = new List<object?>();
        var realKey = AttrGetter(attribute, false, fallback);
        int i = 0;
        while (i < sorted.Count)
        {
            var k = key(sorted[i]);
            var members = new List<object?>();
            while (i < sorted.Count && Py.Equal(key(sorted[i]), k)) members.Add(sorted[i++]);
            var grouper = caseSensitive ? k : realKey(members[0]);
            groups.Add(new PyList([grouper, new PyList(members)], isTuple: true, fields: ["grouper", "list"], tupleName: "_GroupTuple"));
        }
        return new PyList(groups);
    }

    /// <summary>jinja2's <c>do_indent</c>, including its quirk of appending a newline before <c>splitlines</c>.</summary>
    private static object Indent(object? v, object? width, bool first, bool blank)
    {
        if (v is Undefined u) throw u.Fail();
        var indention = width switch
        {
            string w => w,
            Markup m => m.Value,
            long or bool => PyStr.Repeat(" ", Py.ToLong(width!)),
            _ => throw Py.TypeError($"can't multiply sequence by non-int of type '{Py.TypeName(width)}'"),
        };
        var s = (Py.AsString(v) ?? throw Py.TypeError($"unsupported operand type(s) for +=: '{Py.TypeName(v)}' and 'str'")) + "\n";
        var lines = PyStr.SplitLines(s, keepends: false).Cast<string>().ToList();
        string rv;
        if (blank)
        {
            rv = string.Join("\n" + indention, lines);
        }
        else
        {
            var sb = new StringBuilder(lines[0]);
            if (lines.Count > 1)
            {
                sb.Append('\n');
                for (int i = 1; i < lines.Count; i++)
                {
                    if (i > 1) sb.Append('\n');
                    if (lines[i].Length > 0) sb.Append(indention);
                    sb.Append(lines[i]);
                }
            }
            rv = sb.ToString();
        }
        if (first) rv = indention + rv;
        return v is Markup ? new Markup(rv) : rv;
    }

    private static string Join(object? v, Args a)
    {
        a.Check("join", "d", "attribute");
        var sep = Py.Str(a.Get(0, "d", ""));
        var items = Py.Iterate(v);
        if (a.TryGet(1, "attribute", out var attribute) && attribute is not null) items = items.Select(AttrGetter(attribute));
        return string.Join(sep, items.Select(Py.Str));
    }

    private static PyIterator Map(RenderState state, object? v, Args a)
    {
        Func<object?, object?> func;
        if (a.Count == 0 && a.Keywords?.Exists(k => k.Key == "attribute") == true)
        {
            var unexpected = a.Keywords.FirstOrDefault(k => k.Key is not ("attribute" or "default"));
            if (unexpected.Key is not null) throw Py.Unsupported($"FilterArgumentError: Unexpected keyword argument '{unexpected.Key}'");
            func = AttrGetter(a.Get(-1, "attribute", null), fallback: a.Get(-1, "default", null));
        }
        else
        {
            if (a.Count == 0) throw Py.Unsupported("FilterArgumentError: map requires a filter argument");
            var filter = Py.AsString(a.Positional[0]) ?? throw Py.TypeError("map() filter name must be a string");
            var rest = a.Skip(1);
            func = item => Apply(state, filter, item, rest);
        }
        return new PyIterator(Py.Truthy(v) ? Py.Iterate(v).Select(func) : [], "generator");
    }

    private static PyIterator SelectOrReject(RenderState state, object? v, Args a, bool select, bool lookupAttr)
    {
        if (!Py.Truthy(v)) return new PyIterator([], "generator");
        Func<object?, object?> trans = x => x;
        int off = 0;
        if (lookupAttr)
        {
            if (a.Count == 0) throw Py.Unsupported("FilterArgumentError: Missing parameter for attribute name");
            trans = AttrGetter(a.Positional[0]);
            off = 1;
        }
        Func<object?, bool> test;
        if (a.Count > off)
        {
            var testName = Py.AsString(a.Positional[off]) ?? throw Py.TypeError("test name must be a string");
            var rest = a.Skip(off + 1);
            test = x => Tests.Apply(state, testName, x, rest);
        }
        else
        {
            test = Py.Truthy;
        }
        return new PyIterator(Py.Iterate(v).Where(item => test(trans(item)) == select), "generator");
    }

    private static object? MinMax(object? v, Args a, bool max)
    {
        a.Check(max ? "max" : "min", "case_sensitive", "attribute");
        var key = AttrGetter(a.Get(1, "attribute", null), !Py.Truthy(a.Get(0, "case_sensitive", Py.False)));
        bool any = false;
        object? best = null, bestKey = null;
        foreach (var item in Py.Iterate(v))
        {
            var k = key(item);
            if (!any || (max ? Py.Compare(k, bestKey, ">") > 0 : Py.Compare(k, bestKey) < 0))
            {
                best = item;
                bestKey = k;
                any = true;
            }
        }
        return any ? best : Undefined.WithHint("No aggregated item, sequence was empty.");
    }

    private static object? Round(object? v, Args a)
    {
        a.Check("round", "precision", "method");
        var precision = Py.Index(a.Get(0, "precision", 0L), "precision");
        var method = Py.Str(a.Get(1, "method", "common"));
        if (method is not ("common" or "ceil" or "floor")) throw Py.Unsupported("FilterArgumentError: method must be common, ceil or floor");
        if (v is Undefined u) throw u.Fail();
        if (!Py.IsNumber(v)) throw Py.TypeError($"type {Py.TypeName(v)} doesn't define __round__ method");
        if (method == "common")
        {
            if (v is double d) return PyFormat.Round(d, precision);
            if (precision >= 0) return v is bool b ? (b ? 1L : 0L) : v;
            var p = BigInteger.Pow(10, (int)Math.Min(-precision, 400));
            var q = BigInteger.DivRem(Py.ToBig(v!), p, out var r);
            var twice = BigInteger.Abs(r) * 2;
            if (twice > p || (twice == p && !q.IsEven)) q += r.Sign;
            return Py.Int(q * p);
        }
        var scale = Py.Pow(10L, precision);
        var scaled = Py.ToDouble(Py.Mul(v, scale)!);
        double rounded = method == "ceil" ? Math.Ceiling(scaled) : Math.Floor(scaled);
        return Py.Div(Py.Int(new BigInteger(rounded)), scale);
    }

    private static PyList Sort(object? v, Args a)
    {
        a.Check("sort", "reverse", "case_sensitive", "attribute");
        bool reverse = Py.Truthy(a.Get(0, "reverse", Py.False));
        var key = MultiAttrGetter(a.Get(2, "attribute", null), !Py.Truthy(a.Get(1, "case_sensitive", Py.False)));
        return new PyList(Py.StableSort(Py.Iterate(v).ToList(), key, reverse));
    }

    private static object? Sum(object? v, Args a)
    {
        a.Check("sum", "attribute", "start");
        var start = a.Get(1, "start", 0L);
        if (Py.IsString(start)) throw Py.TypeError("sum() can't sum strings [use ''.join(seq) instead]");
        var items = Py.Iterate(v);
        if (a.TryGet(0, "attribute", out var attribute) && attribute is not null) items = items.Select(AttrGetter(attribute));
        object? total = start;
        foreach (var item in items) total = Py.Add(total, item);
        return total;
    }

    /// <summary>jinja2's <c>do_title</c>: split on runs of <c>-</c>, whitespace and opening brackets; each piece's first character uppercased, the rest lowercased.</summary>
    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            int j = i;
            bool sep = IsTitleSeparator(s[i]);
            while (j < s.Length && IsTitleSeparator(s[j]) == sep) j++;
            var piece = s[i..j];
            if (sep)
            {
                sb.Append(piece);
            }
            else
            {
                int first = char.IsHighSurrogate(piece[0]) && piece.Length > 1 ? 2 : 1;
                sb.Append(PyStr.Upper(piece[..first])).Append(PyStr.Lower(piece[first..]));
            }
            i = j;
        }
        return sb.ToString();
    }

    private static bool IsTitleSeparator(char c) => c is '-' or '(' or '{' or '[' or '<' || PyStr.IsSpace(c);

    private static object? Truncate(object? v, Args a)
    {
        a.Check("truncate", "length", "killwords", "end", "leeway");
        var s = SoftStr(v);
        long length = Py.Index(a.Get(0, "length", 255L), "length");
        var end = Py.Str(a.Get(2, "end", "..."));
        long leeway = Py.Index(a.Get(3, "leeway", 5L) ?? 5L, "leeway");
        long endLen = PyStr.Length(end);
        if (length < endLen) throw Py.Unsupported($"AssertionError: expected length >= {endLen}, got {length}");
        if (leeway < 0) throw Py.Unsupported($"AssertionError: expected leeway >= 0, got {leeway}");
        long len = PyStr.Length(s);
        if (len <= length + leeway) return v is Undefined ? v : s;
        var head = PyStr.Slice(s, 0, Math.Min(len, length - endLen), 1);
        if (Py.Truthy(a.Get(1, "killwords", Py.False))) return head + end;
        return (string)PyStr.RSplit(head, " ", 1)[0]! + end;
    }

    private static PyIterator Unique(object? v, Args a)
    {
        a.Check("unique", "case_sensitive", "attribute");
        var key = AttrGetter(a.Get(1, "attribute", null), !Py.Truthy(a.Get(0, "case_sensitive", Py.False)));
        return new PyIterator(UniqueItems(v, key), "generator");
    }

    private static IEnumerable<object?> UniqueItems(object? v, Func<object?, object?> key)
    {
        var seen = new PyDict();
        foreach (var item in Py.Iterate(v))
        {
            var k = key(item);
            if (seen.ContainsKey(k)) continue;
            seen.Set(k, null);
            yield return item;
        }
    }

    private static int WordCount(string s)
    {
        int n = 0;
        bool inWord = false;
        foreach (var r in s.EnumerateRunes())
        {
            bool w = Rune.IsLetterOrDigit(r) || r.Value == '_' || Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation;
            if (w && !inWord) n++;
            inWord = w;
        }
        return n;
    }

    private static string FileSize(object? v, bool binary)
    {
        double bytes = ToFloat(v) as double? ?? throw Py.ValueError($"could not convert {Py.TypeName(v)} to float");
        int b = binary ? 1024 : 1000;
        string[] prefixes = binary ? ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"] : ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
        if (bytes == 1) return "1 Byte";
        if (bytes < b) return ((long)bytes).ToString(CultureInfo.InvariantCulture) + " Bytes";
        double unit = 0;
        for (int i = 0; i < prefixes.Length; i++)
        {
            unit = Math.Pow(b, i + 2);
            if (bytes < unit) return PyFormat.Percent("%.1f", b * bytes / unit) + " " + prefixes[i];
        }
        return PyFormat.Percent("%.1f", b * bytes / unit) + " " + prefixes[^1];
    }

    /// <summary>transformers' <c>tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>.</summary>
    private static string ToJson(object? v, Args a)
    {
        a.Check("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        bool ensureAscii = Py.Truthy(a.Get(0, "ensure_ascii", Py.False));
        string? indent = a.Get(1, "indent", null) switch
        {
            null => null,
            string s => s,
            long or bool => PyStr.Repeat(" ", Py.ToLong(a.Get(1, "indent", null)!)),
            var other => throw Py.TypeError($"can't multiply sequence by non-int of type '{Py.TypeName(other)}'"),
        };
        string? itemSep = null, keySep = null;
        if (a.Get(2, "separators", null) is { } seps)
        {
            var parts = Py.Iterate(seps).ToList();
            if (parts.Count != 2 || Py.AsString(parts[0]) is not { } i || Py.AsString(parts[1]) is not { } k) throw Py.ValueError("separators must be an (item_separator, key_separator) pair of strings");
            (itemSep, keySep) = (i, k);
        }
        return PyJson.Dumps(v, ensureAscii, indent, itemSep, keySep, Py.Truthy(a.Get(3, "sort_keys", Py.False)));
    }
}
