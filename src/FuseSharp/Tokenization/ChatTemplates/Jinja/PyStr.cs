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

    /// <summary>Python's <c>str.upper</c> (full case mapping: ß -> SS, ﬁ -> FI, ...).</summary>
    public static string Upper(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes()) sb.Append(UpperRune(r));
        return sb.ToString();
    }

    /// <summary>Python's <c>str.lower</c> (İ -> i̇, and Σ -> ς at the end of a word, as Python does).</summary>
    public static string Lower(string s)
    {
        var runes = s.EnumerateRunes().ToArray();
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < runes.Length; i++) sb.Append(LowerAt(runes, i));
        return sb.ToString();
    }

    private static string UpperRune(Rune r) => PyCaseTables.Upper.TryGetValue(r.Value, out var u) ? u : Rune.ToUpperInvariant(r).ToString();

    /// <summary>The lowercase of <c>runes[i]</c> in its context (Unicode's Final_Sigma rule needs the neighbours).</summary>
    private static string LowerAt(Rune[] runes, int i)
    {
        var r = runes[i];
        if (r.Value == 0x130) return "i\u0307";
        if (r.Value == 0x3A3 && IsFinalSigma(runes, i)) return "\u03C2";
        return Rune.ToLowerInvariant(r).ToString();
    }

    /// <summary>Unicode's Final_Sigma condition: a cased letter before Σ and none after it (case-ignorable characters skipped).</summary>
    private static bool IsFinalSigma(Rune[] runes, int at)
    {
        int i = at - 1;
        while (i >= 0 && IsCaseIgnorable(runes[i])) i--;
        if (i < 0 || !IsCased(runes[i])) return false;
        int j = at + 1;
        while (j < runes.Length && IsCaseIgnorable(runes[j])) j++;
        return j == runes.Length || !IsCased(runes[j]);
    }

    private static bool IsCaseIgnorable(Rune r) =>
        Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol
        || r.Value is '\'' or '.' or ':' or 0xB7 or 0x387 or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;

    private static string TitleRune(Rune r) => PyCaseTables.Title.TryGetValue(r.Value, out var t) ? t : UpperRune(r);

    /// <summary>Python's Lowercase property: Ll plus Other_Lowercase (ª, º, modifier letters, U+0345, ...).</summary>
    private static bool IsLowerRune(Rune r) => Rune.GetUnicodeCategory(r) == UnicodeCategory.LowercaseLetter || r.Value switch
    {
        0xAA or 0xBA or 0x345 or 0x37A or 0x1D78 or 0x2071 or 0x207F or 0xA770 or 0x10780 => true,
        (>= 0x2B0 and <= 0x2B8) or (>= 0x2C0 and <= 0x2C1) or (>= 0x2E0 and <= 0x2E4) or (>= 0x1D2C and <= 0x1D6A) or (>= 0x1D9B and <= 0x1DBF) => true,
        (>= 0x2090 and <= 0x209C) or (>= 0x2170 and <= 0x217F) or (>= 0x24D0 and <= 0x24E9) or (>= 0x2C7C and <= 0x2C7D) or (>= 0xA69C and <= 0xA69D) => true,
        (>= 0xA7F8 and <= 0xA7F9) or (>= 0xAB5C and <= 0xAB5F) or (>= 0x10783 and <= 0x10785) or (>= 0x10787 and <= 0x107B0) or (>= 0x107B2 and <= 0x107BA) => true,
        _ => false,
    };

    /// <summary>Python's Uppercase property: Lu plus Other_Uppercase (Roman numerals, circled letters, ...).</summary>
    private static bool IsUpperRune(Rune r) => Rune.GetUnicodeCategory(r) == UnicodeCategory.UppercaseLetter || r.Value is
        (>= 0x2160 and <= 0x216F) or (>= 0x24B6 and <= 0x24CF) or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189);

    private static bool IsCased(Rune r) => IsLowerRune(r) || IsUpperRune(r) || Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter;

    /// <summary>Python's <c>str.title</c>: a cased character after an uncased one is titlecased, others lowercased.</summary>
    public static string Title(string s)
    {
        var runes = s.EnumerateRunes().ToArray();
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        for (int i = 0; i < runes.Length; i++)
        {
            sb.Append(prevCased ? LowerAt(runes, i) : TitleRune(runes[i]));
            prevCased = IsCased(runes[i]);
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.capitalize</c>: first character titlecased, the rest lowercased (in context).</summary>
    public static string Capitalize(string s)
    {
        var runes = s.EnumerateRunes().ToArray();
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < runes.Length; i++) sb.Append(i == 0 ? TitleRune(runes[0]) : LowerAt(runes, i));
        return sb.ToString();
    }

    public static string SwapCase(string s)
    {
        var runes = s.EnumerateRunes().ToArray();
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            var r = runes[i];
            sb.Append(IsUpperRune(r) ? LowerAt(runes, i) : IsLowerRune(r) ? UpperRune(r) : r.ToString());
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>islower</c>/<c>isupper</c>: at least one cased character and none of the other case (or titlecase).</summary>
    public static bool IsLowerOrUpper(string s, bool lower)
    {
        bool cased = false;
        foreach (var r in s.EnumerateRunes())
        {
            bool isLower = IsLowerRune(r), isUpper = IsUpperRune(r), isTitle = Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter;
            if (isTitle || (lower ? isUpper : isLower)) return false;
            if (lower ? isLower : isUpper) cased = true;
        }
        return cased;
    }

    public static bool IsTitle(string s)
    {
        bool cased = false, prevCased = false;
        foreach (var r in s.EnumerateRunes())
        {
            if (IsUpperRune(r) || Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter)
            {
                if (prevCased) return false;
                prevCased = cased = true;
            }
            else if (IsLowerRune(r))
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
