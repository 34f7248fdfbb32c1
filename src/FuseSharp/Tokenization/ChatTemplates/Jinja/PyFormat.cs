using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>Python's number formatting and parsing: <c>repr(float)</c>, <c>%</c>-formatting, <c>str.format</c>, <c>int()</c>/<c>float()</c> of strings, <c>round</c>.</summary>
internal static partial class PyFormat
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, fixed notation for 1e-4 &lt;= |x| &lt; 1e16, else "1e+16" style.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        var (digits, decpt) = ShortestDigits(Math.Abs(d));
        var sign = d < 0 ? "-" : "";
        if (decpt > -4 && decpt <= 16)
        {
            if (decpt <= 0) return sign + "0." + new string('0', -decpt) + digits;
            if (decpt >= digits.Length) return sign + digits + new string('0', decpt - digits.Length) + ".0";
            return sign + digits[..decpt] + "." + digits[decpt..];
        }
        int e = decpt - 1;
        var mant = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
        return sign + mant + "e" + (e < 0 ? "-" : "+") + Math.Abs(e).ToString("00", Inv);
    }

    /// <summary>The shortest round-trip decimal digits of <paramref name="d"/> &gt; 0 and the decimal point position (value = 0.DIGITS × 10^decpt).</summary>
    private static (string Digits, int Decpt) ShortestDigits(double d)
    {
        var r = d.ToString("R", Inv); // shortest round-trippable since .NET Core 3.0
        int exp = 0;
        int ei = r.IndexOfAny(['E', 'e']);
        if (ei >= 0)
        {
            exp = int.Parse(r.AsSpan(ei + 1), NumberStyles.AllowLeadingSign, Inv);
            r = r[..ei];
        }
        int dot = r.IndexOf('.', StringComparison.Ordinal);
        string intPart = dot < 0 ? r : r[..dot], frac = dot < 0 ? "" : r[(dot + 1)..];
        var digits = intPart + frac;
        int decpt = intPart.Length + exp;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..];
        decpt -= lead;
        digits = digits.TrimEnd('0');
        return (digits.Length == 0 ? "0" : digits, decpt);
    }

    // ---- int() / float() of strings -----------------------------------------------------------------------------

    [GeneratedRegex(@"^[+-]?(?:\d(?:_?\d)*)$", RegexOptions.CultureInvariant)]
    private static partial Regex IntLiteral();

    [GeneratedRegex(@"^[+-]?(?:(?:\d(?:_?\d)*)?\.(?:\d(?:_?\d)*)|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex FloatLiteral();

    /// <summary>Python's <c>int(s, base)</c> for base 0 or 2..36 (prefixes 0x/0o/0b allowed for their base, underscores between digits).</summary>
    public static bool TryParseInt(string s, long radix, out object value)
    {
        value = 0L;
        if (radix is not (0 or (>= 2 and <= 36))) throw Py.ValueError("int() base must be >= 2 and <= 36, or 0");
        var t = PyStr.Strip(s, null);
        bool negative = t.StartsWith('-');
        if (t.Length > 0 && t[0] is '+' or '-') t = t[1..];
        if (t.Length >= 2 && t[0] == '0' && char.ToLowerInvariant(t[1]) is 'x' or 'o' or 'b')
        {
            long prefixed = char.ToLowerInvariant(t[1]) switch { 'x' => 16, 'o' => 8, _ => 2 };
            if (radix == 0 || radix == prefixed)
            {
                radix = prefixed;
                t = t[2..];
                if (t.StartsWith('_')) t = t[1..];
            }
        }
        if (radix == 0)
        {
            radix = 10;
            if (t.Length > 1 && t[0] == '0' && t.Any(c => c != '0' && c != '_')) return false; // "010" is invalid with base 0
        }
        if (t.Length == 0 || t[0] == '_' || t[^1] == '_' || t.Contains("__", StringComparison.Ordinal)) return false;
        if (t.Length > 4300) throw Py.ValueError("Exceeds the limit (4300 digits) for integer string conversion");
        BigInteger v = 0;
        foreach (char c in t)
        {
            if (c == '_') continue;
            int d = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiLetter(c) ? char.ToLowerInvariant(c) - 'a' + 10 : 99;
            if (d >= radix) return false;
            v = v * radix + d;
        }
        value = Py.Int(negative ? -v : v);
        return true;
    }

    /// <summary>Python's <c>float(s)</c>; false where it raises ValueError.</summary>
    public static bool TryParseFloat(string s, out double value)
    {
        value = 0;
        var t = PyStr.Strip(s, null);
        var lower = t.ToLowerInvariant();
        var unsigned = lower.TrimStart('+', '-');
        if (unsigned is "inf" or "infinity" or "nan" && lower.Length - unsigned.Length <= 1)
        {
            value = unsigned == "nan" ? double.NaN : lower.StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity;
            return true;
        }
        if (!FloatLiteral().IsMatch(t)) return false;
        value = double.Parse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, Inv);
        return true;
    }

    // ---- round() -------------------------------------------------------------------------------------------------

    /// <summary>Python's <c>round(x, ndigits)</c> for floats: the exact binary value rounded half-to-even at that decimal.</summary>
    public static double Round(double x, long ndigits)
    {
        if (double.IsNaN(x) || double.IsInfinity(x) || x == 0) return x;
        if (ndigits > 330) return x;
        if (ndigits < -330) return 0.0 * x;
        // x = m * 2^e exactly; scale by 10^ndigits as a rational and round half-even.
        long bits = BitConverter.DoubleToInt64Bits(x);
        bool neg = bits < 0;
        int exp = (int)((bits >> 52) & 0x7FF);
        long man = bits & 0xFFFFFFFFFFFFFL;
        if (exp == 0) exp = 1; else man |= 1L << 52;
        exp -= 1075;
        BigInteger num = man, den = BigInteger.One;
        if (exp > 0) num <<= exp; else den <<= -exp;
        if (ndigits >= 0) num *= BigInteger.Pow(10, (int)ndigits); else den *= BigInteger.Pow(10, (int)-ndigits);
        var q = BigInteger.DivRem(num, den, out var rem);
        var twice = rem * 2;
        if (twice > den || (twice == den && !q.IsEven)) q += 1;
        var text = ndigits >= 0 ? q.ToString(Inv) + "e-" + ndigits.ToString(Inv) : q.ToString(Inv) + "e" + (-ndigits).ToString(Inv);
        var result = double.Parse(text, NumberStyles.Float, Inv);
        return neg ? -result : result;
    }

    // ---- %-formatting --------------------------------------------------------------------------------------------

    /// <summary>Python's <c>format % args</c> for str.</summary>
    public static string Percent(string format, object? args)
    {
        List<object?> positional = args is PyList { IsTuple: true } t ? t.Items : [args];
        var mapping = args as PyDict;
        // CPython treats any non-tuple, non-str argument with __getitem__ (dict, list, range, Undefined) as a mapping:
        // then unused arguments are not an error.
        bool mappingLike = args is PyDict or PyList { IsTuple: false } or PyRange or Undefined;
        int next = 0;
        bool usedMapping = false;
        var sb = new StringBuilder(format.Length + 16);
        int i = 0;
        object? NextArg()
        {
            if (next >= positional.Count) throw Py.TypeError("not enough arguments for format string");
            return positional[next++];
        }
        while (i < format.Length)
        {
            char c = format[i++];
            if (c != '%')
            {
                sb.Append(c);
                continue;
            }
            if (i >= format.Length) throw Py.ValueError("incomplete format");
            object? value = null;
            bool haveValue = false;
            if (format[i] == '(')
            {
                int close = format.IndexOf(')', i);
                if (close < 0) throw Py.ValueError("incomplete format key");
                if (mapping is null) throw Py.TypeError("format requires a mapping");
                var key = format[(i + 1)..close];
                if (!mapping.TryGetValue(key, out value)) throw Py.Unsupported($"KeyError: {PyStr.Repr(key)}");
                haveValue = usedMapping = true;
                i = close + 1;
            }
            var spec = new FormatSpec();
            for (; i < format.Length && "-+ #0".Contains(format[i], StringComparison.Ordinal); i++)
            {
                switch (format[i])
                {
                    case '-': spec.Align = '<'; spec.ZeroPad = false; break;
                    case '+': spec.Sign = '+'; break;
                    case ' ': if (spec.Sign != '+') spec.Sign = ' '; break;
                    case '#': spec.Alternate = true; break;
                    case '0': spec.ZeroPad = spec.Align != '<'; break;
                }
            }
            if (i < format.Length && format[i] == '*')
            {
                spec.Width = (int)Py.Index(NextArg(), "* wants int");
                if (spec.Width < 0) { spec.Align = '<'; spec.Width = -spec.Width; }
                i++;
            }
            else
            {
                while (i < format.Length && char.IsAsciiDigit(format[i])) spec.Width = spec.Width * 10 + (format[i++] - '0');
            }
            if (i < format.Length && format[i] == '.')
            {
                i++;
                spec.Precision = 0;
                if (i < format.Length && format[i] == '*')
                {
                    spec.Precision = (int)Py.Index(NextArg(), "* wants int");
                    i++;
                }
                else
                {
                    while (i < format.Length && char.IsAsciiDigit(format[i])) spec.Precision = spec.Precision * 10 + (format[i++] - '0');
                }
            }
            while (i < format.Length && format[i] is 'h' or 'l' or 'L') i++;
            if (i >= format.Length) throw Py.ValueError("incomplete format");
            char type = format[i++];
            if (type == '%')
            {
                sb.Append('%');
                continue;
            }
            if (!haveValue) value = NextArg();
            if (value is Undefined u && type is not ('s' or 'r' or 'a')) throw u.Fail();
            spec.Type = type;
            string body = type switch
            {
                's' => Truncate(Py.Str(value), spec.Precision),
                'r' or 'a' => Truncate(type == 'a' ? AsciiRepr(value) : Py.Repr(value), spec.Precision),
                'd' or 'i' or 'u' => FormatInteger(PercentInt(value, type), 'd', spec),
                'o' or 'x' or 'X' => FormatInteger(PercentInt(value, type), type, spec),
                'e' or 'E' or 'f' or 'F' or 'g' or 'G' => FormatFloat(PercentFloat(value, type), type, spec),
                'c' => value switch
                {
                    long or bool => char.ConvertFromUtf32((int)Py.ToLong(value)),
                    string s when PyStr.Length(s) == 1 => s,
                    _ => throw Py.TypeError("%c requires an int or a unicode character"),
                },
                _ => throw Py.ValueError($"unsupported format character '{type}' (0x{(int)type:x})"),
            };
            sb.Append(Pad(body, spec, numeric: type is not ('s' or 'r' or 'a' or 'c')));
        }
        if (!usedMapping && !mappingLike && next < positional.Count)
            throw Py.TypeError("not all arguments converted during string formatting");
        return sb.ToString();
    }

    private static string Truncate(string s, int precision) => precision >= 0 && PyStr.Length(s) > precision ? PyStr.Slice(s, 0, precision, 1) : s;

    private static string AsciiRepr(object? v)
    {
        var r = Py.Repr(v);
        var sb = new StringBuilder(r.Length);
        foreach (var rune in r.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp < 0x80) sb.Append((char)cp);
            else if (cp < 0x100) sb.Append(Inv, $"\\x{cp:x2}");
            else if (cp < 0x10000) sb.Append(Inv, $"\\u{cp:x4}");
            else sb.Append(Inv, $"\\U{cp:x8}");
        }
        return sb.ToString();
    }

    private static BigInteger PercentInt(object? v, char type) => v switch
    {
        long or bool or BigInteger => Py.ToBig(v),
        double d when type is 'd' or 'i' or 'u' => double.IsFinite(d) ? new BigInteger(Math.Truncate(d)) : throw Py.Overflow("cannot convert float infinity to integer"),
        double => throw Py.TypeError($"%{type} format: an integer is required, not float"),
        _ => throw Py.TypeError($"%{type} format: {(type is 'd' or 'i' or 'u' ? "a real number" : "an integer")} is required, not {Py.TypeName(v)}"),
    };

    private static double PercentFloat(object? v, char type) => v switch
    {
        long or bool or double => Py.ToDouble(v),
        _ => throw Py.TypeError($"must be real number, not {Py.TypeName(v)}"),
    };

    // ---- str.format ----------------------------------------------------------------------------------------------

    /// <summary>Python's <c>str.format</c> (the sandboxed formatter: fields go through jinja2's getattr/getitem).</summary>
    public static string Format(string format, Args args)
    {
        var sb = new StringBuilder(format.Length + 16);
        int auto = 0;
        bool manual = false;
        int i = 0;
        while (i < format.Length)
        {
            char c = format[i];
            if (c == '}')
            {
                if (i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i += 2; continue; }
                throw Py.ValueError("Single '}' encountered in format string");
            }
            if (c != '{')
            {
                sb.Append(c);
                i++;
                continue;
            }
            if (i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i += 2; continue; }
            int close = format.IndexOf('}', i + 1);
            if (close < 0) throw Py.ValueError("expected '}' before end of string");
            var field = format[(i + 1)..close];
            if (field.Contains('{', StringComparison.Ordinal)) throw Py.Unsupported("nested replacement fields in str.format specs are not supported");
            i = close + 1;
            string spec = "";
            char conversion = '\0';
            int colon = field.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0) { spec = field[(colon + 1)..]; field = field[..colon]; }
            int bang = field.IndexOf('!', StringComparison.Ordinal);
            if (bang >= 0)
            {
                if (field.Length != bang + 2) throw Py.ValueError("expected ':' after conversion specifier");
                conversion = field[bang + 1];
                field = field[..bang];
            }
            int end = field.IndexOfAny(['.', '[']);
            var head = end < 0 ? field : field[..end];
            object? value;
            if (head.Length == 0)
            {
                if (manual) throw Py.ValueError("cannot switch from manual field specification to automatic field numbering");
                value = PositionalArg(args, auto++);
            }
            else if (head.All(char.IsAsciiDigit))
            {
                if (auto > 0) throw Py.ValueError("cannot switch from automatic field numbering to manual field specification");
                manual = true;
                value = PositionalArg(args, int.Parse(head, Inv));
            }
            else
            {
                value = args.Keywords?.FirstOrDefault(k => k.Key == head) is { Key: not null } kw ? kw.Value : throw Py.Unsupported($"KeyError: {PyStr.Repr(head)}");
            }
            int p = end < 0 ? field.Length : end;
            while (p < field.Length)
            {
                if (field[p] == '.')
                {
                    int q = field.IndexOfAny(['.', '['], p + 1);
                    if (q < 0) q = field.Length;
                    value = Py.GetAttr(value, field[(p + 1)..q]);
                    p = q;
                }
                else
                {
                    int q = field.IndexOf(']', p);
                    if (q < 0) throw Py.ValueError("Missing ']' in format string");
                    var key = field[(p + 1)..q];
                    value = Py.GetItem(value, key.Length > 0 && key.All(char.IsAsciiDigit) ? long.Parse(key, Inv) : key);
                    p = q + 1;
                }
            }
            value = conversion switch
            {
                '\0' => value,
                's' => Py.Str(value),
                'r' => Py.Repr(value),
                'a' => AsciiRepr(value),
                _ => throw Py.ValueError($"Unknown conversion specifier {conversion}"),
            };
            sb.Append(FormatValue(value, spec));
        }
        return sb.ToString();
    }

    private static object? PositionalArg(Args args, int index) =>
        index < args.Count ? args.Positional[index] : throw Py.Unsupported($"IndexError: Replacement index {index} out of range for positional args tuple");

    /// <summary>Python's <c>format(value, spec)</c> for str, int and float.</summary>
    public static string FormatValue(object? value, string specText)
    {
        if (specText.Length == 0) return Py.Str(value);
        var spec = FormatSpec.Parse(specText);
        switch (value)
        {
            case string or Markup:
                if (spec.Type is not ('\0' or 's')) throw Py.ValueError($"Unknown format code '{spec.Type}' for object of type 'str'");
                if (spec.Sign != '\0') throw Py.ValueError("Sign not allowed in string format specifier");
                return Pad(Truncate(Py.Str(value), spec.Precision), spec, numeric: false);
            case long or bool or BigInteger:
                if (spec.Type is 'e' or 'E' or 'f' or 'F' or 'g' or 'G' or '%') return Pad(FormatFloat(Py.ToDouble(value), spec.Type, spec), spec, true);
                if (spec.Type == 'c') return Pad(char.ConvertFromUtf32((int)Py.ToLong(value)), spec, true);
                if (spec.Type is not ('\0' or 'd' or 'n' or 'x' or 'X' or 'o' or 'b')) throw Py.ValueError($"Unknown format code '{spec.Type}' for object of type 'int'");
                return Pad(FormatInteger(Py.ToBig(value), spec.Type is '\0' or 'n' ? 'd' : spec.Type, spec), spec, true);
            case double d:
                if (spec.Type is not ('\0' or 'e' or 'E' or 'f' or 'F' or 'g' or 'G' or '%' or 'n')) throw Py.ValueError($"Unknown format code '{spec.Type}' for object of type 'float'");
                if (spec.Type == '\0' && spec.Precision < 0)
                {
                    var repr = FloatRepr(Math.Abs(d));
                    return Pad(SignPrefix(double.IsNegative(d), spec) + Group(repr, spec.Grouping), spec, true);
                }
                return Pad(FormatFloat(d, spec.Type is '\0' or 'n' ? 'g' : spec.Type, spec), spec, true);
            default:
                throw Py.Unsupported($"format spec '{specText}' applied to a {Py.TypeName(value)} object");
        }
    }

    /// <summary>A parsed format spec (shared by <c>%</c> and <c>str.format</c>).</summary>
    private sealed class FormatSpec
    {
        public char Fill = ' ';
        public char Align = '\0';
        public char Sign = '\0';
        public bool Alternate;
        public bool ZeroPad;
        public int Width;
        public char Grouping = '\0';
        public int Precision = -1;
        public char Type = '\0';

        public static FormatSpec Parse(string s)
        {
            var spec = new FormatSpec();
            int i = 0;
            if (s.Length >= 2 && s[1] is '<' or '>' or '^' or '=') { spec.Fill = s[0]; spec.Align = s[1]; i = 2; }
            else if (s.Length >= 1 && s[0] is '<' or '>' or '^' or '=') { spec.Align = s[0]; i = 1; }
            if (i < s.Length && s[i] is '+' or '-' or ' ') spec.Sign = s[i++];
            if (i < s.Length && s[i] == '#') { spec.Alternate = true; i++; }
            if (i < s.Length && s[i] == '0') { spec.ZeroPad = true; i++; }
            while (i < s.Length && char.IsAsciiDigit(s[i])) spec.Width = spec.Width * 10 + (s[i++] - '0');
            if (i < s.Length && s[i] is ',' or '_') spec.Grouping = s[i++];
            if (i < s.Length && s[i] == '.')
            {
                i++;
                spec.Precision = 0;
                if (i >= s.Length || !char.IsAsciiDigit(s[i])) throw Py.ValueError("Format specifier missing precision");
                while (i < s.Length && char.IsAsciiDigit(s[i])) spec.Precision = spec.Precision * 10 + (s[i++] - '0');
            }
            if (i < s.Length) spec.Type = s[i++];
            if (i < s.Length) throw Py.ValueError("Invalid format specifier");
            return spec;
        }
    }

    private static string SignPrefix(bool negative, FormatSpec spec) => negative ? "-" : spec.Sign is '+' ? "+" : spec.Sign is ' ' ? " " : "";

    private static string FormatInteger(BigInteger v, char type, FormatSpec spec)
    {
        var mag = BigInteger.Abs(v);
        string digits = type switch
        {
            'x' => mag.ToString("x", Inv).TrimStart('0'),
            'X' => mag.ToString("X", Inv).TrimStart('0'),
            'o' => ToBase(mag, 8),
            'b' => ToBase(mag, 2),
            _ => mag.ToString(Inv),
        };
        if (digits.Length == 0) digits = "0";
        if (type == 'd') digits = Group(digits, spec.Grouping);
        var prefix = spec.Alternate ? type switch { 'x' => "0x", 'X' => "0X", 'o' => "0o", 'b' => "0b", _ => "" } : "";
        return SignPrefix(v < 0, spec) + prefix + digits;
    }

    private static string ToBase(BigInteger v, int b)
    {
        if (v.IsZero) return "0";
        var sb = new StringBuilder();
        while (!v.IsZero)
        {
            sb.Insert(0, (char)('0' + (int)(v % b)));
            v /= b;
        }
        return sb.ToString();
    }

    private static string FormatFloat(double d, char type, FormatSpec spec)
    {
        bool neg = double.IsNegative(d) && !double.IsNaN(d);
        double a = Math.Abs(d);
        bool upper = type is 'E' or 'F' or 'G';
        string body;
        if (double.IsNaN(d)) body = upper ? "NAN" : "nan";
        else if (double.IsInfinity(d)) body = upper ? "INF" : "inf";
        else
        {
            int p = spec.Precision < 0 ? 6 : spec.Precision;
            switch (char.ToLowerInvariant(type))
            {
                case 'f':
                    body = Group(a.ToString("F" + p.ToString(Inv), Inv), spec.Grouping);
                    if (spec.Alternate && p == 0) body += ".";
                    break;
                case '%':
                    body = (a * 100).ToString("F" + p.ToString(Inv), Inv) + "%";
                    break;
                case 'e':
                    body = Exponential(a, p, spec.Alternate);
                    break;
                default: // 'g'
                    if (p == 0) p = 1;
                    if (a == 0)
                    {
                        body = spec.Alternate ? "0." + new string('0', p - 1) : "0";
                        break;
                    }
                    var e = SplitExponent(a, p - 1).Exponent;
                    if (e >= -4 && e < p)
                    {
                        body = a.ToString("F" + (p - 1 - e).ToString(Inv), Inv);
                        if (!spec.Alternate && body.Contains('.', StringComparison.Ordinal)) body = body.TrimEnd('0').TrimEnd('.');
                        body = Group(body, spec.Grouping);
                    }
                    else
                    {
                        body = Exponential(a, p - 1, spec.Alternate);
                        if (!spec.Alternate)
                        {
                            int ei = body.IndexOf('e', StringComparison.Ordinal);
                            var mant = body[..ei];
                            if (mant.Contains('.', StringComparison.Ordinal)) mant = mant.TrimEnd('0').TrimEnd('.');
                            body = mant + body[ei..];
                        }
                    }
                    break;
            }
            if (upper) body = body.ToUpperInvariant();
        }
        return SignPrefix(neg, spec) + body;
    }

    /// <summary>"1.500000e+00": .NET's "E" format writes three exponent digits, Python at least two.</summary>
    private static string Exponential(double a, int precision, bool alternate)
    {
        var (mant, exp) = SplitExponent(a, precision);
        if (alternate && precision == 0) mant += ".";
        return mant + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", Inv);
    }

    /// <summary><paramref name="a"/> rounded to <paramref name="precision"/> digits after the first: mantissa text and decimal exponent.</summary>
    private static (string Mantissa, int Exponent) SplitExponent(double a, int precision)
    {
        var s = a.ToString("E" + precision.ToString(Inv), Inv); // correctly rounded, e.g. "1.500000E+000"
        int ei = s.IndexOf('E', StringComparison.Ordinal);
        return (s[..ei], int.Parse(s.AsSpan(ei + 1), NumberStyles.AllowLeadingSign, Inv));
    }

    private static string Group(string digits, char sep)
    {
        if (sep == '\0') return digits;
        int dot = digits.IndexOfAny(['.', 'e', 'E']);
        var intPart = dot < 0 ? digits : digits[..dot];
        var rest = dot < 0 ? "" : digits[dot..];
        var sb = new StringBuilder();
        for (int i = 0; i < intPart.Length; i++)
        {
            if (i > 0 && (intPart.Length - i) % 3 == 0) sb.Append(sep);
            sb.Append(intPart[i]);
        }
        return sb + rest;
    }

    private static string Pad(string body, FormatSpec spec, bool numeric)
    {
        int len = PyStr.Length(body);
        if (spec.Width <= len) return body;
        int pad = spec.Width - len;
        char align = spec.Align;
        char fill = spec.Fill;
        if (align == '\0')
        {
            if (numeric && spec.ZeroPad) { align = '='; fill = '0'; }
            else align = numeric ? '>' : '<';
        }
        else if (spec.ZeroPad && spec.Fill == ' ' && align != '<') fill = '0';
        switch (align)
        {
            case '<': return body + new string(fill, pad);
            case '^': return new string(fill, pad / 2) + body + new string(fill, pad - pad / 2);
            case '=':
                int signLen = body.Length > 0 && body[0] is '-' or '+' or ' ' ? 1 : 0;
                if (body.Length > signLen + 1 && body[signLen] == '0' && body[signLen + 1] is 'x' or 'X' or 'o' or 'b') signLen += 2;
                return body[..signLen] + new string(fill, pad) + body[signLen..];
            default: return new string(fill, pad) + body;
        }
    }
}
