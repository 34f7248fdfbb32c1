using System.Globalization;
using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// The global functions of the environment transformers builds: jinja2's defaults (<c>range</c> as the sandbox limits it,
/// <c>dict</c>, <c>namespace</c>, <c>cycler</c>, <c>joiner</c>) plus transformers' <c>raise_exception(message)</c> and
/// <c>strftime_now(format)</c>.
/// </summary>
internal static class Globals
{
    /// <summary>jinja2's sandbox refuses ranges longer than this (<c>MAX_RANGE</c>).</summary>
    public const long MaxRange = 100_000;

    private static readonly Dictionary<string, object> Functions = new(StringComparer.Ordinal)
    {
        ["range"] = new BuiltinFunction("range", Range),
        ["dict"] = new BuiltinFunction("dict", (_, a) => MakeDict("dict", a)),
        ["namespace"] = new BuiltinFunction("namespace", (_, a) => new PyNamespace(MakeDict("namespace", a))),
        ["cycler"] = new BuiltinFunction("cycler", (_, a) =>
            a.Count == 0 ? throw Py.Unsupported("RuntimeError: at least one item has to be provided") : new Cycler(a.Positional.ToList())),
        ["joiner"] = new BuiltinFunction("joiner", (_, a) =>
        {
            a.Check("joiner", "sep");
            return new Joiner(Py.Str(a.Get(0, "sep", ", ")));
        }),
        ["lipsum"] = new BuiltinFunction("lipsum", (_, _) => throw Py.Unsupported("lipsum() generates random text; it is not supported in chat templates")),
        ["raise_exception"] = new BuiltinFunction("raise_exception", (_, a) =>
            throw new ChatTemplateException(a.Count > 0 ? Py.Str(a.Positional[0]) : "", ChatTemplateErrorKind.Raised)),
        ["strftime_now"] = new BuiltinFunction("strftime_now", (s, a) =>
        {
            a.Check("strftime_now", "format");
            return Strftime(s.Now, Py.AsString(a.Get(0, "format", null)) ?? throw Py.TypeError("strftime_now() argument must be str"));
        }),
    };

    public static bool TryGet(string name, out object? value)
    {
        bool found = Functions.TryGetValue(name, out var v);
        value = v;
        return found;
    }

    private static object Range(RenderState state, Args a)
    {
        if (a.HasKeywords) throw Py.TypeError("range() takes no keyword arguments");
        if (a.Count is < 1 or > 3) throw Py.TypeError($"range expected at most 3 arguments, got {a.Count}");
        var n = a.Positional.Select(v => v is long or bool ? Py.ToLong(v!) : v is Undefined u ? throw u.Fail()
            : v is System.Numerics.BigInteger ? throw Py.Unsupported($"OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).")
            : throw Py.TypeError($"'{Py.TypeName(v)}' object cannot be interpreted as an integer")).ToArray();
        var (start, stop, step) = n.Length switch { 1 => (0L, n[0], 1L), 2 => (n[0], n[1], 1L), _ => (n[0], n[1], n[2]) };
        if (step == 0) throw Py.ValueError("range() arg 3 must not be zero");
        var r = new PyRange(start, stop, step);
        if (r.Length > MaxRange) throw Py.Unsupported($"OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        return r;
    }

    /// <summary>Python's <c>dict(mapping_or_pairs, **kwargs)</c>.</summary>
    public static PyDict MakeDict(string function, Args a)
    {
        if (a.Count > 1) throw Py.TypeError($"{function} expected at most 1 argument, got {a.Count}");
        var d = new PyDict();
        if (a.Count == 1)
        {
            switch (a.Positional[0])
            {
                case PyDict src:
                    foreach (var (k, v) in src.Items) d.Set(k, v);
                    break;
                case var other:
                    int i = 0;
                    foreach (var item in Py.Iterate(other))
                    {
                        var pair = Py.IsIterable(item) && item is not string ? Py.Iterate(item).ToList() : null;
                        if (pair is null) throw Py.TypeError($"cannot convert dictionary update sequence element #{i} to a sequence");
                        if (pair.Count != 2) throw Py.ValueError($"dictionary update sequence element #{i} has length {pair.Count}; 2 is required");
                        d.Set(pair[0], pair[1]);
                        i++;
                    }
                    break;
            }
        }
        if (a.Keywords is not null)
        {
            foreach (var (k, v) in a.Keywords) d.Set(k, v);
        }
        return d;
    }

    private static readonly string[] Days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    private static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    /// <summary>
    /// Python's <c>datetime.now().strftime(format)</c> in the C locale for a naive local time (so <c>%z</c>/<c>%Z</c> are empty),
    /// with glibc's <c>%-d</c>-style no-padding flag.
    /// </summary>
    public static string Strftime(DateTime t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int mondayDay = ((int)t.DayOfWeek + 6) % 7; // 0 = Monday
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                sb.Append(c);
                continue;
            }
            char f = format[++i];
            bool noPad = false;
            if (f == '-' && i + 1 < format.Length)
            {
                noPad = true;
                f = format[++i];
            }
            string Num(int v, int width) => noPad ? v.ToString(inv) : v.ToString(new string('0', width), inv);
            sb.Append(f switch
            {
                'a' => Days[mondayDay][..3],
                'A' => Days[mondayDay],
                'w' => ((int)t.DayOfWeek).ToString(inv),
                'u' => (mondayDay + 1).ToString(inv),
                'd' => Num(t.Day, 2),
                'e' => noPad ? t.Day.ToString(inv) : t.Day.ToString(inv).PadLeft(2),
                'b' or 'h' => Months[t.Month - 1][..3],
                'B' => Months[t.Month - 1],
                'm' => Num(t.Month, 2),
                'y' => Num(t.Year % 100, 2),
                'Y' => t.Year.ToString(inv),
                'C' => Num(t.Year / 100, 2),
                'H' => Num(t.Hour, 2),
                'k' => t.Hour.ToString(inv).PadLeft(2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'l' => (t.Hour % 12 == 0 ? 12 : t.Hour % 12).ToString(inv).PadLeft(2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'P' => t.Hour < 12 ? "am" : "pm",
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", inv),
                'j' => Num(t.DayOfYear, 3),
                'U' => Num((t.DayOfYear + 6 - (int)t.DayOfWeek) / 7, 2),
                'W' => Num((t.DayOfYear + 6 - mondayDay) / 7, 2),
                'z' or 'Z' => "",
                'c' => $"{Days[mondayDay][..3]} {Months[t.Month - 1][..3]} {t.Day,2} {t:HH:mm:ss} {t.Year}",
                'x' => t.ToString("MM/dd/yy", inv),
                'X' or 'T' => t.ToString("HH:mm:ss", inv),
                'D' => t.ToString("MM/dd/yy", inv),
                'F' => t.ToString("yyyy-MM-dd", inv),
                'R' => t.ToString("HH:mm", inv),
                'n' => "\n",
                't' => "\t",
                '%' => "%",
                _ => throw Py.Unsupported($"strftime directive '%{f}' is not supported"),
            });
        }
        return sb.ToString();
    }
}
