using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// Python object semantics as jinja2 (running on CPython, in an <c>ImmutableSandboxedEnvironment</c>) applies them:
/// truthiness, <c>str()</c>/<c>repr()</c>, equality and ordering, arithmetic, <c>in</c>, <c>len()</c>, iteration,
/// and jinja2's <c>getattr</c>/<c>getitem</c> rules (attribute first for <c>a.b</c>, item first for <c>a['b']</c>,
/// a missing one gives <see cref="Undefined"/>).
/// </summary>
internal static class Py
{
    public static readonly object True = true;
    public static readonly object False = false;

    public static object Bool(bool b) => b ? True : False;

    public static ChatTemplateException TypeError(string message) => new("TypeError: " + message, ChatTemplateErrorKind.Runtime);

    public static ChatTemplateException ValueError(string message) => new("ValueError: " + message, ChatTemplateErrorKind.Runtime);

    public static ChatTemplateException ZeroDivision(string message) => new("ZeroDivisionError: " + message, ChatTemplateErrorKind.Runtime);

    public static ChatTemplateException Overflow(string what = "int too large to convert to a machine integer") =>
        new("OverflowError: " + what, ChatTemplateErrorKind.Runtime);

    public static ChatTemplateException Unsupported(string message) => new(message, ChatTemplateErrorKind.Unsupported);

    // ---- types -------------------------------------------------------------------------------------------------

    /// <summary>Python's <c>type(v).__name__</c>.</summary>
    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        Markup => "Markup",
        PyList l => l.IsTuple ? (l.TupleName ?? "tuple") : "list",
        PyDict => "dict",
        Undefined => "Undefined",
        PyNamespace => "Namespace",
        PyRange => "range",
        PyDictView w => w.TypeName,
        PyIterator it => it.TypeName,
        Macro => "Macro",
        LoopContext => "LoopContext",
        BoundMethod => "builtin_function_or_method",
        PyCallable => "function",
        Cycler => "Cycler",
        Joiner => "Joiner",
        _ => v.GetType().Name,
    };

    /// <summary>jinja2's <c>object_type_repr</c>, used in undefined messages: "None", "dict object", "jinja2.utils.Namespace object".</summary>
    public static string ObjectTypeRepr(object? v) => v switch
    {
        null => "None",
        PyNamespace => "jinja2.utils.Namespace object",
        LoopContext => "jinja2.runtime.LoopContext object",
        Macro => "jinja2.runtime.Macro object",
        Markup => "markupsafe.Markup object",
        Cycler => "jinja2.utils.Cycler object",
        Joiner => "jinja2.utils.Joiner object",
        _ => TypeName(v) + " object",
    };

    public static bool IsNumber(object? v) => v is long or double or bool or BigInteger;

    /// <summary>A Python int: <c>long</c> when it fits (always, after <see cref="Int"/>), <c>BigInteger</c> beyond, or a bool.</summary>
    public static bool IsInteger(object? v) => v is long or bool or BigInteger;

    /// <summary>Boxes an integer result as a long when it fits, else as a BigInteger (Python ints are unbounded).</summary>
    public static object Int(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;

    public static BigInteger ToBig(object v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger bi => bi,
        _ => throw TypeError($"'{TypeName(v)}' object cannot be interpreted as an integer"),
    };

    public static bool IsString(object? v) => v is string or Markup;

    /// <summary>The text of a str or Markup; null otherwise.</summary>
    public static string? AsString(object? v) => v switch { string s => s, Markup m => m.Value, _ => null };

    // ---- truthiness, str, repr ---------------------------------------------------------------------------------

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0.0,
        BigInteger bi => !bi.IsZero,
        string s => s.Length > 0,
        Markup m => m.Value.Length > 0,
        PyList l => l.Count > 0,
        PyDict d => d.Count > 0,
        Undefined => false,
        PyRange r => r.Length > 0,
        PyDictView w => w.Dict.Count > 0,
        LoopContext lc => lc.Length > 0,
        _ => true,
    };

    /// <summary>Python's <c>str(v)</c> (what <c>{{ v }}</c> prints).</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger bi => bi.ToString(CultureInfo.InvariantCulture),
        double d => PyFormat.FloatRepr(d),
        Markup m => m.Value,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's <c>repr(v)</c>.</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v, int depth)
    {
        if (depth > 200) throw Unsupported("RecursionError: value nested too deeply to print");
        switch (v)
        {
            case string s:
                sb.Append(PyStr.Repr(s));
                break;
            case Markup m:
                sb.Append("Markup(").Append(PyStr.Repr(m.Value)).Append(')');
                break;
            case Undefined:
                sb.Append("Undefined");
                break;
            case PyList l:
                sb.Append(l.IsTuple ? '(' : '[');
                for (int i = 0; i < l.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    AppendRepr(sb, l[i], depth + 1);
                }
                if (l.IsTuple && l.Count == 1) sb.Append(',');
                sb.Append(l.IsTuple ? ')' : ']');
                break;
            case PyDict d:
                sb.Append('{');
                bool first = true;
                foreach (var (k, val) in d.Items)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendRepr(sb, k, depth + 1);
                    sb.Append(": ");
                    AppendRepr(sb, val, depth + 1);
                }
                sb.Append('}');
                break;
            case PyDictView w:
                sb.Append(w.TypeName).Append('(');
                AppendRepr(sb, new PyList(w.Iterate().ToList()), depth + 1);
                sb.Append(')');
                break;
            case PyNamespace ns:
                sb.Append("<Namespace ");
                AppendRepr(sb, ns.Attributes, depth + 1);
                sb.Append('>');
                break;
            case PyRange r:
                sb.Append(CultureInfo.InvariantCulture, $"range({r.Start}, {r.Stop}");
                if (r.Step != 1) sb.Append(CultureInfo.InvariantCulture, $", {r.Step}");
                sb.Append(')');
                break;
            case Macro mac:
                sb.Append("<Macro ").Append(mac.IsCaller ? "anonymous" : PyStr.Repr(mac.Name)).Append('>');
                break;
            case LoopContext lc:
                sb.Append(CultureInfo.InvariantCulture, $"<LoopContext {lc.Index0 + 1}/{lc.Length}>");
                break;
            case PyIterator or PyCallable or Cycler or Joiner:
                // CPython prints these with a memory address ("<generator object ... at 0x7f...>"): no output could match.
                throw Unsupported($"printing a {TypeName(v)} object: jinja2 would print its memory address; convert it first (e.g. with |list)");
            case null or bool or long or double:
                sb.Append(Str(v));
                break;
            default:
                sb.Append(v.ToString());
                break;
        }
    }

    // ---- equality, hashing, ordering ---------------------------------------------------------------------------

    /// <summary>Python's <c>a == b</c>.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (ReferenceEquals(a, b)) return a is not double d0 || !double.IsNaN(d0);
        switch (a)
        {
            case null:
                return false;
            case string sa:
                return AsString(b) is { } sb0 && string.Equals(sa, sb0, StringComparison.Ordinal);
            case Markup ma:
                return AsString(b) is { } sb1 && string.Equals(ma.Value, sb1, StringComparison.Ordinal);
            case bool or long or double or BigInteger:
                return IsNumber(b) && NumEquals(a, b!);
            case Undefined:
                return b is Undefined;
            case PyList la:
                if (b is not PyList lb || la.IsTuple != lb.IsTuple || la.Count != lb.Count) return false;
                for (int i = 0; i < la.Count; i++)
                {
                    if (!Equal(la[i], lb[i])) return false;
                }
                return true;
            case PyDict da:
                if (b is not PyDict db || da.Count != db.Count) return false;
                foreach (var (k, v) in da.Items)
                {
                    if (!db.TryGetValue(k, out var v2) || !Equal(v, v2)) return false;
                }
                return true;
            case PyRange ra:
                return b is PyRange rb && ra.Length == rb.Length && (ra.Length == 0 || (ra.Start == rb.Start && (ra.Length == 1 || ra.Step == rb.Step)));
            default:
                return false;
        }
    }

    private static bool NumEquals(object a, object b)
    {
        if (a is double da && b is double db) return da == db;
        if (a is double || b is double) return !double.IsNaN(ToDouble(a is double ? a : b)) && CompareNumbers(a, b) == 0;
        if (a is BigInteger || b is BigInteger) return ToBig(a) == ToBig(b);
        return ToLong(a) == ToLong(b);
    }

    /// <summary>Exact three-way comparison of two numbers (Python compares ints and floats exactly, not through doubles); NaN excluded.</summary>
    private static int CompareNumbers(object a, object b)
    {
        if (a is double x && b is double y) return x.CompareTo(y);
        if (a is double d1) return -CompareIntDouble(ToBig(b), d1);
        if (b is double d2) return CompareIntDouble(ToBig(a), d2);
        if (a is BigInteger || b is BigInteger) return ToBig(a).CompareTo(ToBig(b));
        return ToLong(a).CompareTo(ToLong(b));
    }

    private static int CompareIntDouble(BigInteger i, double d)
    {
        if (double.IsPositiveInfinity(d)) return -1;
        if (double.IsNegativeInfinity(d)) return 1;
        double floor = Math.Floor(d);
        int c = i.CompareTo(new BigInteger(floor));
        return c != 0 ? c : d > floor ? -1 : 0;
    }

    /// <summary>Dict-key equality (same as <see cref="Equal"/>, defined for hashable values).</summary>
    public static bool KeyEquals(object? a, object? b) => (a is null && b is null) || Equal(a, b);

    /// <summary>A hash consistent with <see cref="KeyEquals"/> (1, 1.0 and True hash alike, as in Python).</summary>
    public static int Hash(object? v)
    {
        switch (v)
        {
            case null: return 0x5F3759DF;
            case string s: return string.GetHashCode(s, StringComparison.Ordinal);
            case Markup m: return string.GetHashCode(m.Value, StringComparison.Ordinal);
            case bool b: return b ? 1 : 0;
            case long l: return l.GetHashCode();
            case BigInteger bi: return bi.GetHashCode();
            case double d:
                if (Math.Floor(d) == d && Math.Abs(d) < 9.2233720368547758E18) return ((long)d).GetHashCode();
                if (Math.Floor(d) == d && double.IsFinite(d)) return new BigInteger(d).GetHashCode();
                return d.GetHashCode();
            case PyList l:
                var h = new HashCode();
                foreach (var item in l) h.Add(Hash(item));
                return h.ToHashCode();
            case Undefined: return 0x0BADF00D;
            default: return RuntimeHelpers.GetHashCode(v);
        }
    }

    /// <summary>Raises Python's "unhashable type" for lists and dicts (and tuples containing them).</summary>
    public static void CheckHashable(object? key)
    {
        switch (key)
        {
            case PyList { IsTuple: false }:
            case PyDict:
            case PyDictView:
                throw TypeError($"unhashable type: '{TypeName(key)}'");
            case PyList t:
                foreach (var item in t) CheckHashable(item);
                break;
        }
    }

    /// <summary>Python's ordering comparisons (<c>&lt;</c> etc.); <paramref name="op"/> is "&lt;", "&lt;=", "&gt;", "&gt;=".</summary>
    public static bool Order(string op, object? a, object? b)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
        int c = Compare(a, b, op);
        return op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
    }

    /// <summary>Three-way comparison with Python's rules; raises TypeError where Python's <c>&lt;</c> would.</summary>
    public static int Compare(object? a, object? b, string op = "<")
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if ((a is double x && double.IsNaN(x)) || (b is double y && double.IsNaN(y))) return op is "<" or "<=" ? 1 : -1; // every comparison with NaN is false
            return CompareNumbers(a!, b!);
        }
        if (AsString(a) is { } sa && AsString(b) is { } sb) return PyStr.CompareCodePoints(sa, sb);
        if (a is PyList la2 && b is PyList lb2 && la2.IsTuple == lb2.IsTuple)
        {
            int n = Math.Min(la2.Count, lb2.Count);
            for (int i = 0; i < n; i++)
            {
                if (!Equal(la2[i], lb2[i])) return Compare(la2[i], lb2[i], op);
            }
            return la2.Count.CompareTo(lb2.Count);
        }
        throw TypeError($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    /// <summary>
    /// A stable merge sort with Python's comparison (a stable sort gives the same order as CPython's timsort). Unlike
    /// List.Sort it lets the comparer's TypeError through unchanged; <paramref name="descending"/> keeps equal items in
    /// their original order, as <c>sorted(..., reverse=True)</c> does.
    /// </summary>
    public static List<T> StableSort<T>(List<T> items, Func<T, object?> key, bool descending)
    {
        var keys = items.Select(key).ToArray();
        var order = Enumerable.Range(0, items.Count).ToArray();
        var buffer = new int[order.Length];
        int Cmp(int x, int y) => descending ? Compare(keys[y], keys[x]) : Compare(keys[x], keys[y]);
        for (int width = 1; width < order.Length; width *= 2)
        {
            for (int lo = 0; lo < order.Length; lo += 2 * width)
            {
                int mid = Math.Min(lo + width, order.Length), hi = Math.Min(lo + 2 * width, order.Length);
                int i = lo, j = mid, k = lo;
                while (i < mid && j < hi) buffer[k++] = Cmp(order[j], order[i]) < 0 ? order[j++] : order[i++];
                while (i < mid) buffer[k++] = order[i++];
                while (j < hi) buffer[k++] = order[j++];
            }
            (order, buffer) = (buffer, order);
        }
        return order.Select(i => items[i]).ToList();
    }

    // ---- numbers -----------------------------------------------------------------------------------------------

    public static long ToLong(object v) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger => throw Overflow("Python int too large to convert to C long"),
        _ => throw TypeError($"'{TypeName(v)}' object cannot be interpreted as an integer"),
    };

    public static double ToDouble(object v) => v switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger bi => (double)bi is var f && double.IsFinite(f) ? f : throw Overflow("int too large to convert to float"),
        _ => throw TypeError($"must be real number, not {TypeName(v)}"),
    };

    /// <summary>An int argument (bool counts, as in Python); raises TypeError otherwise.</summary>
    public static long Index(object? v, string what = "indices") => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger => throw Overflow("cannot fit 'int' into an index-sized integer"),
        Undefined u => throw u.Fail(),
        _ => throw TypeError($"{what} must be integers, not {TypeName(v)}"),
    };

    /// <summary>A machine-sized int (what Python accepts as a sequence index).</summary>
    private static bool IsInt(object? v) => v is long or bool;

    /// <summary>Integer arithmetic: 64-bit while it fits, BigInteger beyond, as Python's unbounded ints.</summary>
    private static object IntOp(object a, object b, Func<long, long, long> fast, Func<BigInteger, BigInteger, BigInteger> big)
    {
        if (a is not BigInteger && b is not BigInteger)
        {
            try
            {
                return fast(ToLong(a), ToLong(b));
            }
            catch (OverflowException)
            {
            }
        }
        return Int(big(ToBig(a), ToBig(b)));
    }

    private static ChatTemplateException Unsupported(string op, object? a, object? b) =>
        TypeError($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");

    private static void CheckUndefined(object? a, object? b)
    {
        if (a is Undefined ua) throw ua.Fail();
        if (b is Undefined ub) throw ub.Fail();
    }

    public static object? Add(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (IsInteger(a) && IsInteger(b)) return IntOp(a!, b!, (x, y) => checked(x + y), BigInteger.Add);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a!) + ToDouble(b!);
        if (a is Markup ma && AsString(b) is { } sb0) return new Markup(ma.Value + (b is Markup mb0 ? mb0.Value : PyStr.HtmlEscape(sb0)));
        if (b is Markup mb && a is string sa0) return new Markup(PyStr.HtmlEscape(sa0) + mb.Value);
        if (a is string sa)
        {
            if (b is string sb) return string.Concat(sa, sb);
            throw TypeError($"can only concatenate str (not \"{TypeName(b)}\") to str");
        }
        if (a is PyList la)
        {
            if (b is PyList lb && la.IsTuple == lb.IsTuple)
            {
                var items = new List<object?>(la.Count + lb.Count);
                items.AddRange(la.Items);
                items.AddRange(lb.Items);
                return new PyList(items, la.IsTuple);
            }
            throw TypeError($"can only concatenate {TypeName(a)} (not \"{TypeName(b)}\") to {TypeName(a)}");
        }
        throw Unsupported("+", a, b);
    }

    public static object? Sub(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (IsInteger(a) && IsInteger(b)) return IntOp(a!, b!, (x, y) => checked(x - y), BigInteger.Subtract);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a!) - ToDouble(b!);
        if (a is PyDictView || b is PyDictView) throw Unsupported("set difference with dict views gives a Python set, whose printed order is not reproducible; it is not supported");
        throw Unsupported("-", a, b);
    }

    public static object? Mul(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (IsInteger(a) && IsInteger(b)) return IntOp(a!, b!, (x, y) => checked(x * y), BigInteger.Multiply);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a!) * ToDouble(b!);
        if (IsInteger(b) && (AsString(a) is not null || a is PyList)) return Repeat(a, b is BigInteger big ? (big.Sign < 0 ? 0 : throw Unsupported("MemoryError: repeat count too large")) : ToLong(b!));
        if (IsInteger(a) && (AsString(b) is not null || b is PyList)) return Repeat(b, a is BigInteger big2 ? (big2.Sign < 0 ? 0 : throw Unsupported("MemoryError: repeat count too large")) : ToLong(a!));
        if ((AsString(a) is not null || a is PyList) && b is double || (AsString(b) is not null || b is PyList) && a is double)
            throw TypeError("can't multiply sequence by non-int of type 'float'");
        throw Unsupported("*", a, b);
    }

    private static object Repeat(object? seq, long n)
    {
        if (n <= 0) return seq switch { PyList l => new PyList([], l.IsTuple), Markup => new Markup(""), _ => "" };
        if (AsString(seq) is { } s)
        {
            if ((long)s.Length * n > 1 << 28) throw Unsupported("MemoryError: repeated string too large");
            var sb = new StringBuilder(s.Length * (int)n);
            for (long i = 0; i < n; i++) sb.Append(s);
            return seq is Markup ? new Markup(sb.ToString()) : sb.ToString();
        }
        var list = (PyList)seq!;
        if ((long)list.Count * n > 1 << 24) throw Unsupported("MemoryError: repeated list too large");
        var items = new List<object?>(list.Count * (int)n);
        for (long i = 0; i < n; i++) items.AddRange(list.Items);
        return new PyList(items, list.IsTuple);
    }

    public static object? Div(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("/", a, b);
        double y = ToDouble(b!);
        if (y == 0) throw ZeroDivision(IsInteger(a) && IsInteger(b) ? "division by zero" : "float division by zero");
        return ToDouble(a!) / y;
    }

    public static object? FloorDiv(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("//", a, b);
        if (IsInteger(a) && IsInteger(b)) return FloorDivMod(a!, b!).Quotient;
        var (div, _) = FloatDivMod(ToDouble(a!), ToDouble(b!), "float floor division by zero");
        return div;
    }

    public static object? Mod(object? a, object? b)
    {
        // str % args is tried first, so an undefined right operand only fails if a conversion touches it.
        if (a is Markup ma) return new Markup(PyFormat.Percent(ma.Value, EscapeArgs(b)));
        if (a is string sa) return PyFormat.Percent(sa, b);
        CheckUndefined(a, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("%", a, b);
        if (IsInteger(a) && IsInteger(b)) return FloorDivMod(a!, b!).Remainder;
        var (_, mod) = FloatDivMod(ToDouble(a!), ToDouble(b!), "float modulo");
        return mod;
    }

    /// <summary>Python's integer <c>divmod</c>: the quotient rounds toward negative infinity and the remainder takes the divisor's sign.</summary>
    private static (object Quotient, object Remainder) FloorDivMod(object a, object b)
    {
        var x = ToBig(a);
        var y = ToBig(b);
        if (y.IsZero) throw ZeroDivision("integer division or modulo by zero");
        var q = BigInteger.DivRem(x, y, out var r);
        if (!r.IsZero && (r.Sign < 0) != (y.Sign < 0))
        {
            q -= 1;
            r += y;
        }
        return (Int(q), Int(r));
    }

    private static object? EscapeArgs(object? args) => args switch
    {
        string s => new Markup(PyStr.HtmlEscape(s)),
        PyList { IsTuple: true } t => new PyList(t.Items.Select(x => x is string s2 ? new Markup(PyStr.HtmlEscape(s2)) : x).ToList(), true),
        _ => args,
    };

    /// <summary>CPython's <c>float_divmod</c>: floor quotient and a remainder with the divisor's sign.</summary>
    private static (double Div, double Mod) FloatDivMod(double vx, double wx, string zeroMessage)
    {
        if (wx == 0) throw ZeroDivision(zeroMessage);
        double mod = vx % wx; // C fmod
        double div = (vx - mod) / wx;
        if (mod != 0)
        {
            if ((wx < 0) != (mod < 0))
            {
                mod += wx;
                div -= 1.0;
            }
        }
        else
        {
            mod = Math.CopySign(0.0, wx);
        }
        double floordiv;
        if (div != 0)
        {
            floordiv = Math.Floor(div);
            if (div - floordiv > 0.5) floordiv += 1.0;
        }
        else
        {
            floordiv = Math.CopySign(0.0, vx / wx);
        }
        return (floordiv, mod);
    }

    public static object? Pow(object? a, object? b)
    {
        CheckUndefined(a, b);
        if (!IsNumber(a) || !IsNumber(b)) throw Unsupported("** or pow()", a, b);
        if (IsInteger(a) && IsInteger(b))
        {
            var x = ToBig(a!);
            var y = ToBig(b!);
            if (y.Sign < 0)
            {
                if (x.IsZero) throw ZeroDivision("0.0 cannot be raised to a negative power");
                return Math.Pow(ToDouble(a!), ToDouble(b!));
            }
            // Refuse results beyond a few million bits (Python would compute them, slowly; no chat template needs them).
            if (!x.IsZero && !x.IsOne && x != BigInteger.MinusOne && (y > 4_000_000 || (double)y * BigInteger.Log(BigInteger.Abs(x), 2) > 4_000_000))
                throw Unsupported("integer power too large");
            return Int(BigInteger.Pow(x, (int)y));
        }
        double fx = ToDouble(a!), fy = ToDouble(b!);
        if (fx == 0 && fy < 0) throw ZeroDivision("0.0 cannot be raised to a negative power");
        if (fx < 0 && Math.Floor(fy) != fy) throw Unsupported("a negative number raised to a fractional power is complex in Python; complex numbers are not supported");
        double result = Math.Pow(fx, fy);
        if (double.IsInfinity(result) && double.IsFinite(fx) && double.IsFinite(fy)) throw Unsupported("OverflowError: (34, 'Numerical result out of range')");
        return result;
    }

    public static object? Neg(object? a) => a switch
    {
        long l => l == long.MinValue ? Int(-(BigInteger)l) : -l,
        bool b => b ? -1L : 0L,
        double d => -d,
        BigInteger bi => Int(-bi),
        Undefined u => throw u.Fail(),
        _ => throw TypeError($"bad operand type for unary -: '{TypeName(a)}'"),
    };

    public static object? Pos(object? a) => a switch
    {
        long or double or BigInteger => a,
        bool b => b ? 1L : 0L,
        Undefined u => throw u.Fail(),
        _ => throw TypeError($"bad operand type for unary +: '{TypeName(a)}'"),
    };

    // ---- containers --------------------------------------------------------------------------------------------

    /// <summary>Python's <c>len(v)</c>.</summary>
    public static long Len(object? v) => v switch
    {
        string s => PyStr.Length(s),
        Markup m => PyStr.Length(m.Value),
        PyList l => l.Count,
        PyDict d => d.Count,
        PyDictView w => w.Dict.Count,
        PyRange r => r.Length,
        Undefined => 0,
        LoopContext lc => lc.Length,
        _ => throw TypeError($"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>Python's <c>iter(v)</c>: strings give code points, dicts their keys, Undefined nothing.</summary>
    public static IEnumerable<object?> Iterate(object? v) => v switch
    {
        PyList l => l.Items,
        PyDict d => d.Keys,
        string s => PyStr.CodePoints(s),
        Markup m => PyStr.CodePoints(m.Value),
        PyIterator it => it.Consume(),
        PyRange r => r.Iterate(),
        PyDictView w => w.Iterate(),
        Undefined => [],
        _ => throw TypeError($"'{TypeName(v)}' object is not iterable"),
    };

    /// <summary>True when <see cref="Iterate"/> accepts <paramref name="v"/> (jinja2's <c>iterable</c> test).</summary>
    public static bool IsIterable(object? v) => v is PyList or PyDict or string or Markup or PyIterator or PyRange or PyDictView or Undefined;

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(object? container, object? item)
    {
        switch (container)
        {
            case string or Markup:
                var hay = AsString(container)!;
                if (AsString(item) is { } needle) return hay.Contains(needle, StringComparison.Ordinal);
                if (item is Undefined u) throw u.Fail();
                throw TypeError($"'in <string>' requires string as left operand, not {TypeName(item)}");
            case PyDict d:
                return d.ContainsKey(item);
            case PyDictView { Kind: PyDictView.ViewKind.Keys } kv:
                return kv.Dict.ContainsKey(item);
            case PyRange r:
                if (!IsInt(item)) return r.Iterate().Any(x => Equal(x, item));
                long n = ToLong(item!);
                if (r.Step > 0 ? n < r.Start || n >= r.Stop : n > r.Start || n <= r.Stop) return false;
                return (n - r.Start) % r.Step == 0;
            case PyList or PyDictView or PyIterator or Undefined:
                foreach (var x in Iterate(container))
                {
                    if (Equal(x, item)) return true;
                }
                return false;
            default:
                throw TypeError($"argument of type '{TypeName(container)}' is not iterable");
        }
    }

    /// <summary>jinja2's <c>environment.getitem(obj, key)</c> (sandboxed): <c>obj[key]</c>, else attribute <c>key</c>, else Undefined.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        if (obj is Undefined u) throw u.Fail();
        if (TryIndex(obj, key, out var value)) return value;
        if (key is string name && TryAttribute(obj, name, out value)) return value;
        return Undefined.Missing(obj, key);
    }

    /// <summary>jinja2's sandboxed <c>environment.getattr(obj, name)</c>: attribute <c>name</c>, else <c>obj[name]</c>, else Undefined.</summary>
    public static object? GetAttr(object? obj, string name)
    {
        if (IsDunder(name)) return Undefined.UnsafeAttribute(obj, name); // exists on every object (even Undefined), never safe
        if (obj is Undefined u) throw u.Fail();
        if (TryAttribute(obj, name, out var value)) return value;
        if (TryIndex(obj, name, out value)) return value;
        return Undefined.Missing(obj, name);
    }

    /// <summary>The <c>attr</c> filter: attribute lookup only (no item fallback), sandboxed.</summary>
    public static object? GetAttrOnly(object? obj, string name)
    {
        if (obj is Undefined u) throw u.Fail();
        return TryAttribute(obj, name, out var value) ? value : Undefined.Missing(obj, name);
    }

    /// <summary><c>obj[key]</c> where it succeeds in Python; false where Python raises a TypeError/LookupError.</summary>
    private static bool TryIndex(object? obj, object? key, out object? value)
    {
        value = null;
        switch (obj)
        {
            case PyDict d:
                if (key is PyList { IsTuple: false } or PyDict) return false; // unhashable: TypeError, caught by jinja2
                return d.TryGetValue(key, out value);
            case PyList l when IsInt(key):
                long i = ToLong(key!);
                if (i < 0) i += l.Count;
                if (i < 0 || i >= l.Count) return false;
                value = l[(int)i];
                return true;
            case string or Markup when IsInt(key):
                var s = AsString(obj)!;
                long j = ToLong(key!);
                long n = PyStr.Length(s);
                if (j < 0) j += n;
                if (j < 0 || j >= n) return false;
                value = PyStr.CodePointAt(s, (int)j);
                return true;
            case PyRange r when IsInt(key):
                long k = ToLong(key!);
                if (k < 0) k += r.Length;
                if (k < 0 || k >= r.Length) return false;
                value = r[k];
                return true;
            default:
                return false;
        }
    }

    /// <summary>A Python attribute of <paramref name="obj"/>, with the immutable sandbox's rules.</summary>
    private static bool TryAttribute(object? obj, string name, out object? value)
    {
        value = null;
        if (IsDunder(name))
        {
            value = Undefined.UnsafeAttribute(obj, name); // dunders exist on every object and are never safe
            return true;
        }
        switch (obj)
        {
            case PyNamespace ns:
                return ns.Attributes.TryGetValue(name, out value);
            case LoopContext lc:
                return lc.TryGetAttribute(name, out value);
            case Cycler c:
                return c.TryGetAttribute(name, out value);
            case PyList { Fields: not null } nt when Array.IndexOf(nt.Fields, name) is var f and >= 0:
                value = nt[f];
                return true;
        }
        if (Methods.TryProperty(obj, name, out value)) return true;
        switch (Methods.Lookup(obj, name))
        {
            case Methods.Safety.Safe:
                value = new BoundMethod(obj, name);
                return true;
            case Methods.Safety.Unsafe:
                value = Undefined.UnsafeAttribute(obj, name);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// A dunder attribute every Python object has (<c>__class__</c>, <c>__init__</c>, ...). Those that exist only on
    /// classes or functions (<c>__mro__</c>, <c>__globals__</c>, ...) are missing on values, so lookup falls through as jinja2's does.
    /// </summary>
    private static bool IsDunder(string name) => name.Length > 4 && name.StartsWith("__", StringComparison.Ordinal) && name.EndsWith("__", StringComparison.Ordinal)
        && name is not ("__mro__" or "__name__" or "__qualname__" or "__bases__" or "__base__" or "__subclasses__" or "__globals__" or "__code__"
            or "__builtins__" or "__closure__" or "__func__" or "__self__" or "__wrapped__" or "__defaults__" or "__kwdefaults__" or "__annotations__");

    /// <summary><c>obj[start:stop:step]</c> through jinja2's getitem (a failed slice gives Undefined).</summary>
    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        if (obj is Undefined u) throw u.Fail();
        bool valid = (start is null || IsInt(start)) && (stop is null || IsInt(stop)) && (step is null || IsInt(step));
        if (valid && obj is PyList or string or Markup or PyRange)
        {
            long len = Len(obj);
            long st = step is null ? 1 : ToLong(step);
            if (st == 0) throw ValueError("slice step cannot be zero");
            var (b, e, count) = SliceIndices(len, start is null ? null : ToLong(start), stop is null ? null : ToLong(stop), st);
            switch (obj)
            {
                case PyList l:
                    var items = new List<object?>((int)count);
                    for (long i = 0, p = b; i < count; i++, p += st) items.Add(l[(int)p]);
                    return new PyList(items, l.IsTuple);
                case PyRange r:
                    return new PyRange(r[b], r[b] + count * st * r.Step, st * r.Step);
                default:
                    var s = PyStr.Slice(AsString(obj)!, b, count, st);
                    return obj is Markup ? new Markup(s) : s;
            }
        }
        return Undefined.Missing(obj, new SliceRepr(start, stop, step));
    }

    /// <summary>CPython's <c>PySlice_AdjustIndices</c>: the first index and the number of items.</summary>
    public static (long Start, long Stop, long Count) SliceIndices(long length, long? start, long? stop, long step)
    {
        long b, e;
        if (start is null) b = step < 0 ? length - 1 : 0;
        else
        {
            b = start.Value;
            if (b < 0) b = Math.Max(b + length, step < 0 ? -1 : 0);
            else if (b >= length) b = step < 0 ? length - 1 : length;
        }
        if (stop is null) e = step < 0 ? -1 : length;
        else
        {
            e = stop.Value;
            if (e < 0) e = Math.Max(e + length, step < 0 ? -1 : 0);
            else if (e >= length) e = step < 0 ? length - 1 : length;
        }
        long count = step < 0 ? (e < b ? (b - e - 1) / -step + 1 : 0) : (b < e ? (e - b - 1) / step + 1 : 0);
        return (b, e, count);
    }

    /// <summary>Only for the undefined message of a failed slice ("... has no element slice(None, 1, None)").</summary>
    private sealed class SliceRepr(object? start, object? stop, object? step)
    {
        public override string ToString() => $"slice({Repr(start)}, {Repr(stop)}, {Repr(step)})";
    }

    /// <summary>Calls a callable value (jinja2's sandboxed <c>call</c>).</summary>
    public static object? Call(RenderState state, object? callee, Args args) => callee switch
    {
        PyCallable c => c.Call(state, args),
        LoopContext lc => lc.CallRecursive(state, args),
        Joiner j => j.Call(args),
        Undefined u => throw u.Fail(),
        _ => throw TypeError($"'{TypeName(callee)}' object is not callable"),
    };
}
