using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// Methods of Python's str, dict, list/tuple, int/float and range values as the immutable sandbox exposes them:
/// every method exists (so <c>d.items</c> is the method even when the dict has an "items" key, as in jinja2), the
/// mutating ones (<c>list.append</c>, <c>dict.update</c>, ...) are "unsafe" (a SecurityError when used), and str
/// methods index by code point.
/// </summary>
internal static class Methods
{
    public enum Safety { Missing, Safe, Unsafe }

    private static readonly HashSet<string> StrMethods =
    [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map", "index",
        "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
        "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix", "replace",
        "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title",
        "translate", "upper", "zfill",
    ];

    private static readonly HashSet<string> DictSafe = ["copy", "fromkeys", "get", "items", "keys", "values"];
    private static readonly HashSet<string> DictUnsafe = ["clear", "pop", "popitem", "setdefault", "update"];
    private static readonly HashSet<string> ListSafe = ["copy", "count", "index"];
    private static readonly HashSet<string> ListUnsafe = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"];

    /// <summary>Whether <paramref name="obj"/> has a method <paramref name="name"/> and whether the sandbox allows it.</summary>
    public static Safety Lookup(object? obj, string name) => obj switch
    {
        string => StrMethods.Contains(name) ? Safety.Safe : Safety.Missing,
        Markup => StrMethods.Contains(name) || name is "escape" or "unescape" or "striptags" ? Safety.Safe : Safety.Missing,
        PyDict => DictSafe.Contains(name) ? Safety.Safe : DictUnsafe.Contains(name) ? Safety.Unsafe : Safety.Missing,
        PyList { IsTuple: true } => name is "count" or "index" ? Safety.Safe : Safety.Missing,
        PyList => ListSafe.Contains(name) ? Safety.Safe : ListUnsafe.Contains(name) ? Safety.Unsafe : Safety.Missing,
        long or bool or System.Numerics.BigInteger => name is "bit_length" or "conjugate" or "as_integer_ratio" or "to_bytes" ? Safety.Safe : Safety.Missing,
        double => name is "is_integer" or "conjugate" or "hex" or "as_integer_ratio" ? Safety.Safe : Safety.Missing,
        PyRange => name is "count" or "index" ? Safety.Safe : Safety.Missing,
        _ => Safety.Missing,
    };

    /// <summary>Attributes that are values rather than methods (<c>n.real</c>, <c>range.start</c>).</summary>
    public static bool TryProperty(object? obj, string name, out object? value)
    {
        value = (obj, name) switch
        {
            (long or bool or System.Numerics.BigInteger, "real" or "numerator") => Py.Int(Py.ToBig(obj!)),
            (long or bool or System.Numerics.BigInteger, "imag") => 0L,
            (long or bool or System.Numerics.BigInteger, "denominator") => 1L,
            (double d, "real") => d,
            (double, "imag") => 0.0,
            (PyRange r, "start") => r.Start,
            (PyRange r, "stop") => r.Stop,
            (PyRange r, "step") => r.Step,
            (PyDictView w, "mapping") => w.Dict,
            _ => Missing,
        };
        return value != Missing;
    }

    private static readonly object Missing = new();

    public static object? Call(RenderState state, object? self, string name, Args a) => self switch
    {
        string s => CallStr(s, name, a),
        Markup m => CallMarkup(m, name, a),
        PyDict d => CallDict(d, name, a),
        PyList l => CallList(l, name, a),
        long or bool or System.Numerics.BigInteger => name switch
        {
            "bit_length" => Py.ToBig(self).IsZero ? 0L : (long)System.Numerics.BigInteger.Abs(Py.ToBig(self)).GetBitLength(),
            "conjugate" => Py.Int(Py.ToBig(self)),
            "as_integer_ratio" => PyList.Tuple(Py.Int(Py.ToBig(self)), 1L),
            _ => throw Py.Unsupported($"int.{name}() is not supported"),
        },
        double d => name switch
        {
            "is_integer" => Py.Bool(double.IsFinite(d) && Math.Floor(d) == d),
            "conjugate" => d,
            _ => throw Py.Unsupported($"float.{name}() is not supported"),
        },
        PyRange r => name switch
        {
            "count" => (long)r.Iterate().Count(x => Py.Equal(x, a.Positional.FirstOrDefault())),
            "index" => IndexOf(r.Iterate().ToList(), a, "range"),
            _ => throw Py.Unsupported($"range.{name}() is not supported"),
        },
        _ => throw Py.Unsupported($"{Py.TypeName(self)}.{name}() is not supported"),
    };

    private static string Str(Args a, int i, string name, string function)
    {
        if (!a.TryGet(i, name, out var v)) throw Py.TypeError($"{function}() missing required argument '{name}'");
        return Py.AsString(v) ?? throw Py.TypeError($"{function}() argument must be str, not {Py.TypeName(v)}");
    }

    private static string? OptStr(Args a, int i, string name, string function)
    {
        var v = a.Get(i, name, null);
        return v is null ? null : Py.AsString(v) ?? throw Py.TypeError($"{function} arg must be None or str");
    }

    private static long Int(Args a, int i, string name, long fallback) => a.Get(i, name, null) is { } v ? Py.Index(v, name) : fallback;

    /// <summary>The UTF-16 range of <c>s[start:end]</c> for the optional code point bounds of find/count/startswith.</summary>
    private static (int Start, int End) Bounds(string s, Args a, int first)
    {
        var start = a.Get(first, "start", null);
        var end = a.Get(first + 1, "end", null);
        if (start is null && end is null) return (0, s.Length);
        long len = PyStr.Length(s);
        long b = start is null ? 0 : Py.Index(start), e = end is null ? len : Py.Index(end);
        if (b < 0) b = Math.Max(0, b + len);
        if (e < 0) e = Math.Max(0, e + len);
        b = Math.Min(b, len);
        e = Math.Min(e, len);
        if (e < b) e = b;
        return (PyStr.Utf16Offset(s, (int)b), PyStr.Utf16Offset(s, (int)e));
    }

    private static object? CallStr(string s, string name, Args a)
    {
        switch (name)
        {
            case "strip" or "lstrip" or "rstrip":
                a.Check(name, "chars");
                return PyStr.Strip(s, OptStr(a, 0, "chars", name), left: name != "rstrip", right: name != "lstrip");
            case "split" or "rsplit":
                a.Check(name, "sep", "maxsplit");
                var sep = OptStr(a, 0, "sep", name);
                long max = Int(a, 1, "maxsplit", -1);
                return new PyList(name == "split" ? PyStr.Split(s, sep, max) : PyStr.RSplit(s, sep, max));
            case "splitlines":
                a.Check(name, "keepends");
                return new PyList(PyStr.SplitLines(s, Py.Truthy(a.Get(0, "keepends", Py.False))));
            case "startswith" or "endswith":
            {
                a.Check(name, "prefix", "start", "end");
                if (!a.TryGet(0, "prefix", out var affix)) throw Py.TypeError($"{name}() takes at least 1 argument (0 given)");
                var (b, e) = Bounds(s, a, 1);
                var window = s.AsSpan(b, e - b);
                var options = affix is PyList { IsTuple: true } t ? t.Items : [affix];
                foreach (var o in options)
                {
                    var text = Py.AsString(o) ?? throw Py.TypeError($"{name} first arg must be str or a tuple of str, not {Py.TypeName(o)}");
                    if (name == "startswith" ? window.StartsWith(text, StringComparison.Ordinal) : window.EndsWith(text, StringComparison.Ordinal)) return Py.True;
                }
                return Py.False;
            }
            case "find" or "rfind" or "index" or "rindex":
            {
                a.Check(name, "sub", "start", "end");
                var sub = Str(a, 0, "sub", name);
                var (b, e) = Bounds(s, a, 1);
                int at = name is "find" or "index"
                    ? s.IndexOf(sub, b, e - b, StringComparison.Ordinal)
                    : (e - b < sub.Length ? -1 : s.LastIndexOf(sub, e - 1, e - b, StringComparison.Ordinal));
                if (sub.Length == 0 && name is "rfind" or "rindex") at = e;
                if (at < 0 && name is "index" or "rindex") throw Py.ValueError("substring not found");
                return at < 0 ? -1L : (long)PyStr.CodePointIndex(s, at);
            }
            case "count":
            {
                a.Check(name, "sub", "start", "end");
                var sub = Str(a, 0, "sub", name);
                var (b, e) = Bounds(s, a, 1);
                return PyStr.Count(s[b..e], sub);
            }
            case "replace":
                a.Check(name, "old", "new", "count");
                return PyStr.Replace(s, Str(a, 0, "old", name), Str(a, 1, "new", name), Int(a, 2, "count", -1));
            case "join":
            {
                a.Check(name, "iterable");
                if (!a.TryGet(0, "iterable", out var seq)) throw Py.TypeError("join() takes exactly one argument (0 given)");
                var sb = new StringBuilder();
                int i = 0;
                foreach (var item in Py.Iterate(seq))
                {
                    if (i > 0) sb.Append(s);
                    sb.Append(Py.AsString(item) ?? throw Py.TypeError($"sequence item {i}: expected str instance, {Py.TypeName(item)} found"));
                    i++;
                }
                return sb.ToString();
            }
            case "upper": a.Check(name); return PyStr.Upper(s);
            case "lower": a.Check(name); return PyStr.Lower(s);
            case "casefold": a.Check(name); return PyStr.Lower(s).Replace("ß", "ss", StringComparison.Ordinal);
            case "title": a.Check(name); return PyStr.Title(s);
            case "capitalize": a.Check(name); return PyStr.Capitalize(s);
            case "swapcase": a.Check(name); return PyStr.SwapCase(s);
            case "center" or "ljust" or "rjust":
            {
                a.Check(name, "width", "fillchar");
                long width = Int(a, 0, "width", 0);
                var fill = OptStr(a, 1, "fillchar", name) ?? " ";
                if (PyStr.Length(fill) != 1) throw Py.TypeError("The fill character must be exactly one character long");
                long pad = width - PyStr.Length(s);
                if (name == "center") return PyStr.Center(s, width, fill);
                return name == "ljust" ? s + PyStr.Repeat(fill, pad) : PyStr.Repeat(fill, pad) + s;
            }
            case "zfill":
            {
                a.Check(name, "width");
                long pad = Int(a, 0, "width", 0) - PyStr.Length(s);
                if (pad <= 0) return s;
                int signLen = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
                return s[..signLen] + PyStr.Repeat("0", pad) + s[signLen..];
            }
            case "partition" or "rpartition":
            {
                a.Check(name, "sep");
                var sep2 = Str(a, 0, "sep", name);
                if (sep2.Length == 0) throw Py.ValueError("empty separator");
                int at = name == "partition" ? s.IndexOf(sep2, StringComparison.Ordinal) : s.LastIndexOf(sep2, StringComparison.Ordinal);
                if (at < 0) return name == "partition" ? PyList.Tuple(s, "", "") : PyList.Tuple("", "", s);
                return PyList.Tuple(s[..at], sep2, s[(at + sep2.Length)..]);
            }
            case "removeprefix":
                a.Check(name, "prefix");
                var prefix = Str(a, 0, "prefix", name);
                return s.StartsWith(prefix, StringComparison.Ordinal) ? s[prefix.Length..] : s;
            case "removesuffix":
                a.Check(name, "suffix");
                var suffix = Str(a, 0, "suffix", name);
                return suffix.Length > 0 && s.EndsWith(suffix, StringComparison.Ordinal) ? s[..^suffix.Length] : s;
            case "format":
                return PyFormat.Format(s, a);
            case "expandtabs":
            {
                a.Check(name, "tabsize");
                long tab = Int(a, 0, "tabsize", 8);
                var sb = new StringBuilder();
                long col = 0;
                foreach (string? cp in PyStr.CodePoints(s))
                {
                    if (cp == "\t")
                    {
                        if (tab > 0)
                        {
                            long n = tab - col % tab;
                            sb.Append(' ', (int)n);
                            col += n;
                        }
                    }
                    else
                    {
                        sb.Append(cp);
                        col = cp is "\n" or "\r" ? 0 : col + 1;
                    }
                }
                return sb.ToString();
            }
            case "isspace": a.Check(name); return Py.Bool(s.Length > 0 && s.All(PyStr.IsSpace));
            case "isdigit" or "isdecimal" or "isnumeric": a.Check(name); return Py.Bool(s.Length > 0 && s.EnumerateRunes().All(r => Rune.IsDigit(r) || (name == "isnumeric" && Rune.IsNumber(r))));
            case "isalpha": a.Check(name); return Py.Bool(s.Length > 0 && s.EnumerateRunes().All(Rune.IsLetter));
            case "isalnum": a.Check(name); return Py.Bool(s.Length > 0 && s.EnumerateRunes().All(r => Rune.IsLetterOrDigit(r) || Rune.IsNumber(r)));
            case "isascii": a.Check(name); return Py.Bool(s.All(char.IsAscii));
            case "islower": a.Check(name); return Py.Bool(PyStr.IsLowerOrUpper(s, lower: true));
            case "isupper": a.Check(name); return Py.Bool(PyStr.IsLowerOrUpper(s, lower: false));
            case "istitle": a.Check(name); return Py.Bool(PyStr.IsTitle(s));
            case "isprintable": a.Check(name); return Py.Bool(s.EnumerateRunes().All(r => PyStr.IsPrintable(r.Value)));
            case "isidentifier":
                a.Check(name);
                return Py.Bool(s.Length > 0 && (char.IsLetter(s[0]) || s[0] == '_') && s.All(c => char.IsLetterOrDigit(c) || c == '_'));
            default:
                throw Py.Unsupported($"str.{name}() is not supported in chat templates");
        }
    }

    /// <summary>markupsafe wraps str methods so string arguments are escaped and string results stay Markup.</summary>
    private static object? CallMarkup(Markup m, string name, Args a)
    {
        if (name is "escape" or "unescape" or "striptags") throw Py.Unsupported($"Markup.{name}() is not supported");
        static object? Esc(object? x) => x is string s ? PyStr.HtmlEscape(s) : x is Markup mm ? mm.Value : x;
        var escaped = new Args(a.Positional.Select(Esc).ToList(), a.Keywords?.Select(k => new KeyValuePair<string, object?>(k.Key, Esc(k.Value))).ToList());
        var result = CallStr(m.Value, name, name is "startswith" or "endswith" or "find" or "rfind" or "index" or "rindex" or "count" ? a : escaped);
        return result switch
        {
            string s => new Markup(s),
            PyList l => new PyList(l.Items.Select(x => x is string s2 ? new Markup(s2) : x).ToList(), l.IsTuple),
            _ => result,
        };
    }

    private static object? CallDict(PyDict d, string name, Args a)
    {
        switch (name)
        {
            case "get":
                if (a.HasKeywords) throw Py.TypeError("get() takes no keyword arguments");
                if (a.Count is < 1 or > 2) throw Py.TypeError($"get expected at least 1 argument, got {a.Count}");
                return d.TryGetValue(a.Positional[0], out var v) ? v : a.Count > 1 ? a.Positional[1] : null;
            case "keys": a.Check(name); return new PyDictView(d, PyDictView.ViewKind.Keys);
            case "values": a.Check(name); return new PyDictView(d, PyDictView.ViewKind.Values);
            case "items": a.Check(name); return new PyDictView(d, PyDictView.ViewKind.Items);
            case "copy": a.Check(name); return d.Copy();
            default: throw Py.Unsupported($"dict.{name}() is not supported in chat templates");
        }
    }

    private static object? CallList(PyList l, string name, Args a)
    {
        switch (name)
        {
            case "count":
                if (a.Count != 1) throw Py.TypeError($"{Py.TypeName(l)}.count() takes exactly one argument ({a.Count} given)");
                return (long)l.Items.Count(x => Py.Equal(x, a.Positional[0]));
            case "index":
                return IndexOf(l.Items, a, Py.TypeName(l));
            case "copy":
                a.Check(name);
                return new PyList(l.Items.ToList());
            default:
                throw Py.Unsupported($"list.{name}() is not supported in chat templates");
        }
    }

    private static long IndexOf(List<object?> items, Args a, string typeName)
    {
        if (a.Count is < 1 or > 3) throw Py.TypeError($"index expected at least 1 argument, got {a.Count}");
        var (start, stop, _) = Py.SliceIndices(items.Count, a.Count > 1 ? Py.Index(a.Positional[1]) : null, a.Count > 2 ? Py.Index(a.Positional[2]) : null, 1);
        for (long i = start; i < stop; i++)
        {
            if (Py.Equal(items[(int)i], a.Positional[0])) return i;
        }
        throw Py.ValueError(typeName == "list" ? $"{Py.Repr(a.Positional[0])} is not in list" : $"{typeName}.index(x): x not in {typeName}");
    }
}
