using System.Globalization;
using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

internal enum TokenKind { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof }

internal readonly record struct Token(TokenKind Kind, string Text, int Line, object? Value = null)
{
    public bool Is(TokenKind kind, string text) => Kind == kind && Text == text;

    public bool IsName(string name) => Kind == TokenKind.Name && Text == name;

    public bool IsOp(string op) => Kind == TokenKind.Operator && Text == op;

    public string Describe() => Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.BlockEnd => "end of statement block",
        TokenKind.VariableEnd => "end of print statement",
        TokenKind.BlockBegin => "begin of statement block",
        TokenKind.VariableBegin => "begin of print statement",
        TokenKind.Data => "template data / text",
        _ => Text,
    };
}

/// <summary>
/// jinja2's lexer with the settings transformers uses (<c>trim_blocks=True</c>, <c>lstrip_blocks=True</c>,
/// <c>keep_trailing_newline=False</c>): newlines are normalised to "\n" and one trailing newline dropped;
/// <c>{%-</c>/<c>{{-</c>/<c>{#-</c> strip all whitespace before the tag and <c>-%}</c>/<c>-}}</c>/<c>-#}</c> all whitespace
/// after it; a block or comment tag removes the single "\n" after it (trim_blocks) and the spaces/tabs before it
/// when only whitespace precedes it on its line (lstrip_blocks), unless written <c>+%}</c> / <c>{%+</c>.
/// Inside a tag the end delimiter only counts when brackets are balanced, as in jinja2.
/// </summary>
internal sealed class Lexer
{
    private readonly string src;
    private readonly List<Token> tokens = [];
    private int pos;
    private int line = 1;
    private bool lineStarting = true;

    private Lexer(string source)
    {
        var normalized = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (normalized.EndsWith('\n')) normalized = normalized[..^1];
        src = normalized;
    }

    public static List<Token> Tokenize(string source)
    {
        var lexer = new Lexer(source);
        lexer.Run();
        return lexer.tokens;
    }

    private static ChatTemplateException Error(string message, int line) => new(message, ChatTemplateErrorKind.Syntax, line);

    private void Run()
    {
        while (pos < src.Length)
        {
            int open = FindTagStart(pos);
            if (open < 0)
            {
                EmitData(src[pos..]);
                break;
            }
            char kind = src[open + 1];
            int after = open + 2;
            char sign = after < src.Length && src[after] is '-' or '+' ? src[after] : '\0';
            int rawEnd = kind == '%' ? MatchRawBegin(after + (sign == '\0' ? 0 : 1)) : -1;
            var text = ApplyLeftStrip(src[pos..open], sign, lstripAllowed: kind != '{');
            EmitData(text);
            line += Count(src, pos, open, '\n');
            if (rawEnd >= 0)
            {
                lineStarting = src[rawEnd - 1] == '\n';
                line += Count(src, open, rawEnd, '\n');
                pos = rawEnd;
                LexRaw();
                continue;
            }
            pos = after + (sign == '\0' ? 0 : 1);
            lineStarting = false;
            switch (kind)
            {
                case '#': LexComment(); break;
                case '{': LexTag(TokenKind.VariableBegin, TokenKind.VariableEnd, open); break;
                default: LexTag(TokenKind.BlockBegin, TokenKind.BlockEnd, open); break;
            }
        }
        tokens.Add(new Token(TokenKind.Eof, "", line));
    }

    private int FindTagStart(int from)
    {
        int i = from;
        while ((i = src.IndexOf('{', i)) >= 0 && i + 1 < src.Length)
        {
            if (src[i + 1] is '{' or '%' or '#') return i;
            i++;
        }
        return -1;
    }

    private void EmitData(string text)
    {
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Data, text, line, text));
    }

    /// <summary>jinja2's <c>OptionalLStrip</c>: "-" strips all whitespace; otherwise lstrip_blocks removes the indentation of a block/comment tag on its own line.</summary>
    private string ApplyLeftStrip(string text, char sign, bool lstripAllowed)
    {
        if (sign == '-') return PyStr.Strip(text, null, left: false);
        if (sign == '+' || !lstripAllowed) return text;
        int lpos = text.LastIndexOf('\n') + 1;
        if (lpos == 0 && !lineStarting) return text;
        if (lpos == text.Length) return text;
        for (int i = lpos; i < text.Length; i++)
        {
            if (!PyStr.IsSpace(text[i])) return text;
        }
        return text[..lpos];
    }

    private static int Count(string s, int from, int to, char c)
    {
        int n = 0;
        for (int i = from; i < to; i++)
        {
            if (s[i] == c) n++;
        }
        return n;
    }

    private int SkipSpace(int i)
    {
        while (i < src.Length && PyStr.IsSpace(src[i])) i++;
        return i;
    }

    /// <summary>Matches <c>\s*raw\s*(-%}\s*|%})</c> at <paramref name="i"/>; returns the end or -1. (No trim_blocks newline after <c>raw %}</c>, as in jinja2.)</summary>
    private int MatchRawBegin(int i)
    {
        i = SkipSpace(i);
        if (string.CompareOrdinal(src, i, "raw", 0, 3) != 0) return -1;
        i = SkipSpace(i + 3);
        if (string.CompareOrdinal(src, i, "-%}", 0, 3) == 0) return SkipSpace(i + 3);
        if (string.CompareOrdinal(src, i, "%}", 0, 2) == 0) return i + 2;
        return -1;
    }

    private void LexRaw()
    {
        int search = pos;
        while (true)
        {
            int open = src.IndexOf("{%", search, StringComparison.Ordinal);
            if (open < 0) throw Error("Missing end of raw directive", line);
            int i = open + 2;
            char sign = i < src.Length && src[i] is '-' or '+' ? src[i] : '\0';
            if (sign != '\0') i++;
            i = SkipSpace(i);
            if (string.CompareOrdinal(src, i, "endraw", 0, 6) != 0)
            {
                search = open + 2;
                continue;
            }
            i = SkipSpace(i + 6);
            int end = MatchBlockEnd(i);
            if (end < 0)
            {
                search = open + 2;
                continue;
            }
            var text = ApplyLeftStrip(src[pos..open], sign, lstripAllowed: true);
            EmitData(text);
            line += Count(src, pos, end, '\n');
            lineStarting = src[end - 1] == '\n';
            pos = end;
            return;
        }
    }

    /// <summary>Block end at <paramref name="i"/>: <c>+%}</c>, <c>-%}\s*</c> or <c>%}\n?</c>; the end position or -1.</summary>
    private int MatchBlockEnd(int i)
    {
        if (string.CompareOrdinal(src, i, "+%}", 0, 3) == 0) return i + 3;
        if (string.CompareOrdinal(src, i, "-%}", 0, 3) == 0) return SkipSpace(i + 3);
        if (string.CompareOrdinal(src, i, "%}", 0, 2) == 0) return i + 2 < src.Length && src[i + 2] == '\n' ? i + 3 : i + 2;
        return -1;
    }

    private void LexComment()
    {
        int startLine = line;
        for (int i = pos; i < src.Length; i++)
        {
            int end = -1;
            if (string.CompareOrdinal(src, i, "+#}", 0, 3) == 0) end = i + 3;
            else if (string.CompareOrdinal(src, i, "-#}", 0, 3) == 0) end = SkipSpace(i + 3);
            else if (string.CompareOrdinal(src, i, "#}", 0, 2) == 0) end = i + 2 < src.Length && src[i + 2] == '\n' ? i + 3 : i + 2;
            if (end < 0) continue;
            line += Count(src, pos, end, '\n');
            lineStarting = src[end - 1] == '\n';
            pos = end;
            return;
        }
        throw Error("Missing end of comment tag", startLine);
    }

    private void LexTag(TokenKind begin, TokenKind endKind, int open)
    {
        tokens.Add(new Token(begin, src[open..pos], line));
        var balance = new Stack<char>();
        while (pos < src.Length)
        {
            if (balance.Count == 0)
            {
                int end = endKind == TokenKind.BlockEnd ? MatchBlockEnd(pos) : MatchVariableEnd(pos);
                if (end >= 0)
                {
                    tokens.Add(new Token(endKind, src[pos..end], line));
                    line += Count(src, pos, end, '\n');
                    lineStarting = src[end - 1] == '\n';
                    pos = end;
                    return;
                }
            }
            char c = src[pos];
            if (PyStr.IsSpace(c))
            {
                if (c == '\n') line++;
                pos++;
                continue;
            }
            if (TryNumber() || TryName() || TryString()) continue;
            var op = MatchOperator();
            if (op is null) throw Error($"unexpected char {PyStr.Repr(c.ToString())} at {pos}", line);
            switch (op)
            {
                case "{": balance.Push('}'); break;
                case "(": balance.Push(')'); break;
                case "[": balance.Push(']'); break;
                case "}" or ")" or "]":
                    if (balance.Count == 0) throw Error($"unexpected '{op}'", line);
                    var expected = balance.Pop();
                    if (expected != op[0]) throw Error($"unexpected '{op}', expected '{expected}'", line);
                    break;
            }
            tokens.Add(new Token(TokenKind.Operator, op, line));
            pos += op.Length;
        }
        // The template ended inside a tag; the parser reports it ("unexpected end of template").
    }

    private int MatchVariableEnd(int i)
    {
        if (string.CompareOrdinal(src, i, "-}}", 0, 3) == 0) return SkipSpace(i + 3);
        if (string.CompareOrdinal(src, i, "}}", 0, 2) == 0) return i + 2;
        return -1;
    }

    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private string? MatchOperator()
    {
        foreach (var op in Operators)
        {
            if (string.CompareOrdinal(src, pos, op, 0, op.Length) == 0) return op;
        }
        return null;
    }

    private bool IsDigit(int i) => i < src.Length && char.IsAsciiDigit(src[i]);

    /// <summary><c>(\d+_)*\d+</c> at <paramref name="i"/>: the end, or -1.</summary>
    private int MatchDigits(int i)
    {
        if (!IsDigit(i)) return -1;
        while (IsDigit(i)) i++;
        while (i < src.Length && src[i] == '_' && IsDigit(i + 1))
        {
            i++;
            while (IsDigit(i)) i++;
        }
        return i;
    }

    /// <summary>jinja2's float rule (tried first) and integer rule (binary, octal, hex, decimal with underscores).</summary>
    private bool TryNumber()
    {
        if (!IsDigit(pos)) return false;
        if (pos == 0 || src[pos - 1] != '.')
        {
            int intEnd = MatchDigits(pos);
            int end = -1;
            int frac = intEnd < src.Length && src[intEnd] == '.' ? MatchDigits(intEnd + 1) : -1;
            int expStart = frac >= 0 ? frac : intEnd;
            if (expStart < src.Length && src[expStart] is 'e' or 'E')
            {
                int e = expStart + 1;
                if (e < src.Length && src[e] is '+' or '-') e++;
                end = MatchDigits(e);
            }
            if (end < 0 && frac >= 0) end = frac;
            if (end >= 0)
            {
                var text = src[pos..end];
                var value = double.Parse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture);
                tokens.Add(new Token(TokenKind.Float, text, line, value));
                pos = end;
                return true;
            }
        }
        int start = pos, i = pos;
        int radix = 10;
        if (src[i] == '0' && i + 1 < src.Length && char.ToLowerInvariant(src[i + 1]) is 'b' or 'o' or 'x')
        {
            radix = char.ToLowerInvariant(src[i + 1]) switch { 'b' => 2, 'o' => 8, _ => 16 };
            int j = i + 2;
            int digitsEnd = j;
            while (true)
            {
                int k = digitsEnd < src.Length && src[digitsEnd] == '_' ? digitsEnd + 1 : digitsEnd;
                if (k < src.Length && IsRadixDigit(src[k], radix)) digitsEnd = k + 1;
                else break;
            }
            if (digitsEnd > j) i = digitsEnd;
            else radix = 10;
        }
        if (radix == 10)
        {
            if (src[i] == '0')
            {
                i++;
                while (true)
                {
                    int k = i < src.Length && src[i] == '_' ? i + 1 : i;
                    if (k < src.Length && src[k] == '0') i = k + 1;
                    else break;
                }
            }
            else
            {
                i++;
                while (true)
                {
                    int k = i < src.Length && src[i] == '_' ? i + 1 : i;
                    if (IsDigit(k)) i = k + 1;
                    else break;
                }
            }
        }
        var literal = src[start..i];
        var digits = (radix == 10 ? literal : literal[2..]).Replace("_", "", StringComparison.Ordinal);
        // Python ints are unbounded: literals beyond 64 bits become BigInteger values.
        var v = Py.Int(digits.Aggregate(System.Numerics.BigInteger.Zero,
            (acc, d) => acc * radix + (char.IsAsciiDigit(d) ? d - '0' : char.ToLowerInvariant(d) - 'a' + 10)));
        tokens.Add(new Token(TokenKind.Integer, literal, line, v));
        pos = i;
        return true;
    }

    private static bool IsRadixDigit(char c, int radix) => radix switch
    {
        2 => c is '0' or '1',
        8 => c is >= '0' and <= '7',
        _ => char.IsAsciiHexDigit(c),
    };

    private static bool IsNameStart(char c) => c == '_' || char.IsLetter(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.LetterNumber;

    private static bool IsNameChar(char c) => IsNameStart(c) || char.IsDigit(c) || CharUnicodeInfo.GetUnicodeCategory(c) is
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DecimalDigitNumber;

    private bool TryName()
    {
        if (!IsNameStart(src[pos])) return false;
        int i = pos + 1;
        while (i < src.Length && IsNameChar(src[i])) i++;
        tokens.Add(new Token(TokenKind.Name, src[pos..i], line));
        pos = i;
        return true;
    }

    private bool TryString()
    {
        char q = src[pos];
        if (q is not ('\'' or '"')) return false;
        int i = pos + 1;
        while (i < src.Length && src[i] != q)
        {
            i += src[i] == '\\' ? 2 : 1;
        }
        if (i >= src.Length) return false; // unterminated: jinja2 reports "unexpected char"
        var raw = src[(pos + 1)..i];
        tokens.Add(new Token(TokenKind.String, src[pos..(i + 1)], line, Unescape(raw, line)));
        line += Count(src, pos, i, '\n');
        pos = i + 1;
        return true;
    }

    /// <summary>
    /// jinja2 decodes string literals with <c>value.encode("ascii", "backslashreplace").decode("unicode-escape")</c>:
    /// Python escapes (<c>\n \t \\ \' \xhh \uhhhh \Uhhhhhhhh \ooo</c>, line continuation) are decoded, unknown
    /// escapes stay as written, and a backslash before a non-ASCII character escapes the first character of its
    /// <c>\x..</c>/<c>\u....</c> replacement (reproduced here by building that ASCII form first).
    /// </summary>
    internal static string Unescape(string raw, int line)
    {
        if (!raw.Contains('\\', StringComparison.Ordinal)) return raw;
        var ascii = new StringBuilder(raw.Length);
        for (int k = 0; k < raw.Length; k++)
        {
            int cp = raw[k];
            if (char.IsHighSurrogate(raw[k]) && k + 1 < raw.Length && char.IsLowSurrogate(raw[k + 1])) cp = char.ConvertToUtf32(raw[k], raw[++k]);
            if (cp < 0x80) ascii.Append((char)cp);
            else if (cp < 0x100) ascii.Append(CultureInfo.InvariantCulture, $"\\x{cp:x2}");
            else if (cp < 0x10000) ascii.Append(CultureInfo.InvariantCulture, $"\\u{cp:x4}");
            else ascii.Append(CultureInfo.InvariantCulture, $"\\U{cp:x8}");
        }
        var s = ascii.ToString();
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c != '\\' || i + 1 >= s.Length)
            {
                if (c == '\\') throw new ChatTemplateException("\\ at end of string", ChatTemplateErrorKind.Syntax, line);
                sb.Append(c);
                continue;
            }
            char e = s[++i];
            switch (e)
            {
                case '\n': break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case >= '0' and <= '7':
                    int o = e - '0', n = 1;
                    while (n < 3 && i + 1 < s.Length && s[i + 1] is >= '0' and <= '7')
                    {
                        o = o * 8 + (s[++i] - '0');
                        n++;
                    }
                    sb.Append((char)o);
                    break;
                case 'x' or 'u' or 'U':
                    int len = e switch { 'x' => 2, 'u' => 4, _ => 8 };
                    if (!IsHex(s, i + 1, len))
                        throw new ChatTemplateException($"truncated \\{e}{new string('X', len)} escape", ChatTemplateErrorKind.Syntax, line);
                    int cp = int.Parse(s.AsSpan(i + 1, len), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    if (cp > 0x10FFFF) throw new ChatTemplateException("illegal Unicode character", ChatTemplateErrorKind.Syntax, line);
                    sb.Append(cp >= 0xD800 && cp <= 0xDFFF ? ((char)cp).ToString() : char.ConvertFromUtf32(cp));
                    i += len;
                    break;
                case 'N':
                    throw new ChatTemplateException("\\N{...} named Unicode escapes in template strings are not supported", ChatTemplateErrorKind.Unsupported, line);
                default:
                    sb.Append('\\').Append(e);
                    break;
            }
        }
        return sb.ToString();
    }

    private static bool IsHex(string s, int from, int len)
    {
        if (from + len > s.Length) return false;
        for (int i = from; i < from + len; i++)
        {
            if (!char.IsAsciiHexDigit(s[i])) return false;
        }
        return true;
    }
}
