using System.Globalization;
using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// Python <c>str</c> semantics on .NET strings. Python indexes code points while .NET strings are UTF-16, so
/// length, indexing, slicing and <c>find</c> count a surrogate pair as one character; everything else works on the
/// UTF-16 text directly (equal results for well-formed strings).
/// </summary>
internal static class PyStr
{
    /// <summary>True when <paramref name="s"/> has no surrogates, so UTF-16 indices are code point indices.</summary>
    public static bool IsBmp(string s)
    {
        foreach (char c in s)
        {
            if (char.IsSurrogate(c)) return false;
        }
        return true;
    }

    /// <summary>Python's <c>len(s)</c>.</summary>
    public static int Length(string s)
    {
        if (IsBmp(s)) return s.Length;
        int n = 0;
        for (int i = 0; i < s.Length; i++, n++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        return n;
    }

    /// <summary>UTF-16 start offset of every code point, plus s.Length at the end.</summary>
    private static int[] Offsets(string s)
    {
        var offs = new List<int>(s.Length + 1);
        for (int i = 0; i < s.Length; i++)
        {
            offs.Add(i);
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        offs.Add(s.Length);
        return [.. offs];
    }

    /// <summary>UTF-16 offset of code point <paramref name="cp"/> (0..Length).</summary>
    public static int Utf16Offset(string s, int cp) => IsBmp(s) ? cp : Offsets(s)[cp];

    /// <summary>Code point index of UTF-16 offset <paramref name="utf16"/>.</summary>
    public static int CodePointIndex(string s, int utf16)
    {
        if (IsBmp(s)) return utf16;
        int n = 0;
        for (int i = 0; i < utf16; i++, n++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        return n;
    }

    public static string CodePointAt(string s, int cp)
    {
        if (IsBmp(s)) return s[cp].ToString();
        var o = Offsets(s);
        return s[o[cp]..o[cp + 1]];
    }

    public static IEnumerable<object?> CodePoints(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                yield return s.Substring(i, 2);
                i++;
            }
            else
            {
                yield return s[i].ToString();
            }
        }
    }

    /// <summary><paramref name="count"/> code points from <paramref name="start"/> stepping by <paramref name="step"/>.</summary>
    public static string Slice(string s, long start, long count, long step)
    {
        if (count <= 0) return "";
        if (step == 1)
        {
            if (IsBmp(s)) return s.Substring((int)start, (int)count);
            var o = Offsets(s);
            return s[o[start]..o[start + count]];
        }
        var offs = IsBmp(s) ? null : Offsets(s);
        var sb = new StringBuilder((int)count);
        for (long i = 0, p = start; i < count; i++, p += step)
        {
            if (offs is null) sb.Append(s[(int)p]);
            else sb.Append(s, offs[p], offs[p + 1] - offs[p]);
        }
        return sb.ToString();
    }

    /// <summary>Orders by code point (UTF-16 ordinal order differs for surrogates versus U+E000..U+FFFF).</summary>
    public static int CompareCodePoints(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x == y) continue;
            bool sx = char.IsSurrogate(x), sy = char.IsSurrogate(y);
            if (sx != sy) return sx ? 1 : -1; // a surrogate starts a code point >= U+10000
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }

    /// <summary>Python's <c>str.isspace</c> for one UTF-16 unit (every Python whitespace character is in the BMP).</summary>
    public static bool IsSpace(char c) => c switch
    {
        >= '\t' and <= '\r' => true,
        >= '\x1c' and <= ' ' => true,
        '\x85' or '\xa0' or '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    /// <summary>Line boundaries of Python's <c>str.splitlines</c> (besides "\r\n").</summary>
    public static bool IsLineBreak(char c) => c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029';

    /// <summary>Python's <c>repr(str)</c>.</summary>
    public static string Repr(string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2);
        sb.Append(quote);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\t') sb.Append("\\t");
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c < ' ' || c == '\x7f') sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            else if (c < '\x7f') sb.Append(c);
            else
            {
                int cp = c;
                int width = 1;
                if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    cp = char.ConvertToUtf32(c, s[i + 1]);
                    width = 2;
                }
                if (IsPrintable(cp)) sb.Append(s, i, width);
                else if (cp < 0x100) sb.Append(CultureInfo.InvariantCulture, $"\\x{cp:x2}");
                else if (cp < 0x10000) sb.Append(CultureInfo.InvariantCulture, $"\\u{cp:x4}");
                else sb.Append(CultureInfo.InvariantCulture, $"\\U{cp:x8}");
                i += width - 1;
            }
        }
        sb.Append(quote);
        return sb.ToString();
    }

    /// <summary>Python's <c>str.isprintable</c> for one code point: not in Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs (space excepted).</summary>
    public static bool IsPrintable(int cp)
    {
        if (cp == ' ') return true;
        if (cp is >= 0xD800 and <= 0xDFFF) return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
    }

    /// <summary><c>markupsafe.escape</c>.</summary>
    public static string HtmlEscape(string s)
    {
        if (s.AsSpan().IndexOfAny("&<>'\"") < 0) return s;
        var sb = new StringBuilder(s.Length + 16);
        foreach (char c in s)
        {
            sb.Append(c switch { '&' => "&amp;", '<' => "&lt;", '>' => "&gt;", '"' => "&#34;", '\'' => "&#39;", _ => c.ToString() });
        }
        return sb.ToString();
    }

    // ---- stripping, splitting ----------------------------------------------------------------------------------

    /// <summary>Python's <c>strip</c>/<c>lstrip</c>/<c>rstrip</c>; <paramref name="chars"/> null means whitespace.</summary>
    public static string Strip(string s, string? chars, bool left = true, bool right = true)
    {
        Func<string, int, int> width = (str, i) => char.IsHighSurrogate(str[i]) && i + 1 < str.Length && char.IsLowSurrogate(str[i + 1]) ? 2 : 1;
        bool InSet(int i, int w) => chars is null ? w == 1 && IsSpace(s[i]) : chars.Contains(s.Substring(i, w), StringComparison.Ordinal);
        int start = 0, end = s.Length;
        if (left)
        {
            while (start < end)
            {
                int w = width(s, start);
                if (!InSet(start, w)) break;
                start += w;
            }
        }
        if (right)
        {
            while (end > start)
            {
                int w = end >= 2 && char.IsLowSurrogate(s[end - 1]) && char.IsHighSurrogate(s[end - 2]) ? 2 : 1;
                if (!InSet(end - w, w)) break;
                end -= w;
            }
        }
        return s[start..end];
    }

    /// <summary>Python's <c>str.split(sep, maxsplit)</c>.</summary>
    public static List<object?> Split(string s, string? sep, long maxsplit)
    {
        var parts = new List<object?>();
        if (maxsplit < 0) maxsplit = long.MaxValue;
        if (sep is null)
        {
            int i = 0, n = s.Length;
            while (true)
            {
                while (i < n && IsSpace(s[i])) i++;
                if (i == n) break;
                if (parts.Count == maxsplit)
                {
                    int e = n;
                    while (e > i && IsSpace(s[e - 1])) e--;
                    parts.Add(s[i..e]);
                    break;
                }
                int j = i;
                while (j < n && !IsSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw Py.ValueError("empty separator");
        int pos = 0;
        while (parts.Count < maxsplit)
        {
            int k = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[pos..k]);
            pos = k + sep.Length;
        }
        parts.Add(s[pos..]);
        return parts;
    }

    /// <summary>Python's <c>str.rsplit(sep, maxsplit)</c>.</summary>
    public static List<object?> RSplit(string s, string? sep, long maxsplit)
    {
        if (maxsplit < 0) return Split(s, sep, -1);
        var parts = new List<object?>();
        if (sep is null)
        {
            int j = s.Length;
            while (true)
            {
                while (j > 0 && IsSpace(s[j - 1])) j--;
                if (j == 0) break;
                if (parts.Count == maxsplit)
                {
                    int b = 0;
                    while (b < j && IsSpace(s[b])) b++;
                    parts.Add(s[b..j]);
                    break;
                }
                int i = j;
                while (i > 0 && !IsSpace(s[i - 1])) i--;
                parts.Add(s[i..j]);
                j = i;
            }
            parts.Reverse();
            return parts;
        }
        if (sep.Length == 0) throw Py.ValueError("empty separator");
        int end = s.Length;
        while (parts.Count < maxsplit)
        {
            int k = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (k < 0 || k + sep.Length > end) break;
            parts.Add(s[(k + sep.Length)..end]);
            end = k;
        }
        parts.Add(s[..end]);
        parts.Reverse();
        return parts;
    }

    /// <summary>Python's <c>str.splitlines(keepends)</c>.</summary>
    public static List<object?> SplitLines(string s, bool keepends)
    {
        var lines = new List<object?>();
        int i = 0, start = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (!IsLineBreak(c))
            {
                i++;
                continue;
            }
            int eol = i;
            i += c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
            lines.Add(s[start..(keepends ? i : eol)]);
            start = i;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>Python's <c>str.replace(old, new, count)</c> (an empty <paramref name="old"/> inserts between code points).</summary>
    public static string Replace(string s, string old, string repl, long count = -1)
    {
        if (count < 0) count = long.MaxValue;
        if (count == 0) return s;
        var sb = new StringBuilder(s.Length);
        if (old.Length == 0)
        {
            long done = 0;
            foreach (string? cp in CodePoints(s))
            {
                if (done < count)
                {
                    sb.Append(repl);
                    done++;
                }
                sb.Append(cp);
            }
            if (done < count) sb.Append(repl);
            return sb.ToString();
        }
        if (count == long.MaxValue) return s.Replace(old, repl, StringComparison.Ordinal);
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int k = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(s, pos, k - pos).Append(repl);
            pos = k + old.Length;
        }
        sb.Append(s, pos, s.Length - pos);
        return sb.ToString();
    }

    /// <summary>Python's <c>str.count(sub)</c> (non-overlapping; an empty <paramref name="sub"/> counts len+1).</summary>
    public static long Count(string s, string sub)
    {
        if (sub.Length == 0) return Length(s) + 1;
        long n = 0;
        int pos = 0;
        while ((pos = s.IndexOf(sub, pos, StringComparison.Ordinal)) >= 0)
        {
            n++;
            pos += sub.Length;
        }
        return n;
    }

    // ---- case ---------------------------------------------------------------------------------------------------

    /// <summary>Python's <c>str.upper</c> (full case mapping for the common multi-character cases, e.g. ß -> SS).</summary>
    public static string Upper(string s) => MapCase(s, upper: true);

    /// <summary>Python's <c>str.lower</c> (İ -> i̇ as Python does).</summary>
    public static string Lower(string s) => MapCase(s, upper: false);

    private static string MapCase(string s, bool upper)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
        {
            if (upper && SpecialUpper(r.Value) is { } su) sb.Append(su);
            else if (!upper && r.Value == 0x130) sb.Append("i\u0307");
            else sb.Append(upper ? Rune.ToUpperInvariant(r).ToString() : Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    /// <summary>The unconditional multi-character uppercase mappings of Unicode's SpecialCasing.txt most likely in chat text.</summary>
    private static string? SpecialUpper(int cp) => cp switch
    {
        0xDF => "SS",
        0x149 => "\u02BCN",
        0x1F0 => "J\u030C",
        0x587 => "\u0535\u0552",
        0xFB00 => "FF",
        0xFB01 => "FI",
        0xFB02 => "FL",
        0xFB03 => "FFI",
        0xFB04 => "FFL",
        0xFB05 or 0xFB06 => "ST",
        _ => null,
    };

    private static string TitleRune(Rune r) => r.Value switch
    {
        0xDF => "Ss",
        0xFB01 => "Fi",
        0xFB02 => "Fl",
        0x1C4 or 0x1C5 or 0x1C6 => "\u01C5",
        0x1C7 or 0x1C8 or 0x1C9 => "\u01C8",
        0x1CA or 0x1CB or 0x1CC => "\u01CB",
        0x1F1 or 0x1F2 or 0x1F3 => "\u01F2",
        _ => SpecialUpper(r.Value) ?? Rune.ToUpperInvariant(r).ToString(),
    };

    private static bool IsCased(Rune r)
    {
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;
    }

    /// <summary>Python's <c>str.title</c>: a cased character after an uncased one is titlecased, others lowercased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (var r in s.EnumerateRunes())
        {
            if (IsCased(r))
            {
                sb.Append(prevCased ? Lower(r.ToString()) : TitleRune(r));
                prevCased = true;
            }
            else
            {
                sb.Append(r.ToString());
                prevCased = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.capitalize</c>: first character titlecased, the rest lowercased.</summary>
    public static string Capitalize(string s)
    {
        if (s.Length == 0) return s;
        var first = Rune.GetRuneAt(s, 0);
        return TitleRune(first) + Lower(s[first.Utf16SequenceLength..]);
    }

    public static string SwapCase(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
        {
            if (Rune.IsUpper(r)) sb.Append(Lower(r.ToString()));
            else if (Rune.IsLower(r)) sb.Append(Upper(r.ToString()));
            else sb.Append(r.ToString());
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>islower</c>/<c>isupper</c>: at least one cased character and none of the other case.</summary>
    public static bool IsLowerOrUpper(string s, bool lower)
    {
        bool cased = false;
        foreach (var r in s.EnumerateRunes())
        {
            if (Rune.IsUpper(r) || Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter)
            {
                if (lower) return false;
                cased = true;
            }
            else if (Rune.IsLower(r))
            {
                if (!lower) return false;
                cased = true;
            }
        }
        return cased;
    }

    public static bool IsTitle(string s)
    {
        bool cased = false, prevCased = false;
        foreach (var r in s.EnumerateRunes())
        {
            var cat = Rune.GetUnicodeCategory(r);
            if (cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter)
            {
                if (prevCased) return false;
                prevCased = cased = true;
            }
            else if (cat == UnicodeCategory.LowercaseLetter)
            {
                if (!prevCased) return false;
                prevCased = cased = true;
            }
            else
            {
                prevCased = false;
            }
        }
        return cased;
    }

    /// <summary>Python's <c>str.center(width, fill)</c> (CPython's padding split, extra space on the right unless odd width).</summary>
    public static string Center(string s, long width, string fill)
    {
        long len = Length(s);
        if (width <= len) return s;
        long marg = width - len;
        long left = marg / 2 + (marg & width & 1);
        return Repeat(fill, left) + s + Repeat(fill, marg - left);
    }

    public static string Repeat(string s, long n)
    {
        if (n <= 0) return "";
        if (n > 1 << 24) throw Py.Unsupported("MemoryError: padding too large");
        var sb = new StringBuilder(s.Length * (int)n);
        for (long i = 0; i < n; i++) sb.Append(s);
        return sb.ToString();
    }
}
