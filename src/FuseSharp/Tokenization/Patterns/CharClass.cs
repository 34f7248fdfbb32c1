using System.Text;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Patterns;

/// <summary>Which engine's semantics a pattern follows (they differ in <c>\w</c> and in <c>^</c>/<c>$</c>).</summary>
public enum RegexDialect
{
    /// <summary>Oniguruma with Ruby syntax, as Hugging Face tokenizers compile Split/Replace/ByteLevel patterns: <c>\w</c> = L|M|Nd|Pc, <c>^</c>/<c>$</c> match at line boundaries.</summary>
    Oniguruma,

    /// <summary>The Rust <c>regex</c> crate: <c>\w</c> = Alphabetic|M|Nd|Pc|Join_Control, <c>^</c>/<c>$</c> match at the text boundaries.</summary>
    Rust,
}

/// <summary>A set of code points: ranges, general categories, built-in classes and nested classes, optionally negated and case-insensitive.</summary>
internal sealed class CharClass
{
    [Flags]
    public enum Builtin
    {
        None = 0,
        Space = 1,
        Word = 2,
        Digit = 4,
        Hex = 8,
        AnyButNewline = 16,
        Any = 32,
    }

    private readonly List<(int Lo, int Hi)> ranges = [];
    private readonly List<CharClass> nested = [];
    private uint categories;
    private Builtin builtins;
    private (int Lo, int Hi)[] sortedRanges = [];
    private ulong ascii0, ascii1;
    private byte[]? bmp;

    public CharClass(RegexDialect dialect, bool ignoreCase)
    {
        Dialect = dialect;
        IgnoreCase = ignoreCase;
    }

    public RegexDialect Dialect { get; }

    public bool IgnoreCase { get; }

    public bool Negated { get; set; }

    public void AddRange(int lo, int hi) => ranges.Add((lo, hi));

    public void AddCategories(uint mask) => categories |= mask;

    public void AddBuiltin(Builtin b) => builtins |= b;

    public void AddNested(CharClass c) => nested.Add(c);

    public static CharClass Single(int cp, RegexDialect dialect, bool ignoreCase)
    {
        var c = new CharClass(dialect, ignoreCase);
        c.AddRange(cp, cp);
        return c.Freeze();
    }

    public static CharClass OfBuiltin(Builtin b, bool negated, RegexDialect dialect)
    {
        var c = new CharClass(dialect, false) { Negated = negated };
        c.AddBuiltin(b);
        return c.Freeze();
    }

    /// <summary>Precomputes the ASCII bitmap; call once after the items are added.</summary>
    public CharClass Freeze()
    {
        foreach (var n in nested) n.Freeze();
        var sorted = ranges.OrderBy(r => r.Lo).ToList();
        var merged = new List<(int Lo, int Hi)>();
        foreach (var r in sorted)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi + 1) merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            else merged.Add(r);
        }
        sortedRanges = [.. merged];
        ascii0 = ascii1 = 0;
        for (int cp = 0; cp < 128; cp++)
        {
            if (!Evaluate(cp)) continue;
            if (cp < 64) ascii0 |= 1UL << cp;
            else ascii1 |= 1UL << (cp - 64);
        }
        return this;
    }

    public bool Contains(int cp)
    {
        if (cp < 64) return (ascii0 & (1UL << cp)) != 0;
        if (cp < 128) return (ascii1 & (1UL << (cp - 64))) != 0;
        if (cp < 0x10000)
        {
            var table = bmp ?? BuildBmp();
            return (table[cp >> 3] & (1 << (cp & 7))) != 0;
        }
        return Evaluate(cp);
    }

    /// <summary>True if some code point ≥ 128 is in the class (used to skip search positions quickly).</summary>
    public bool MayContainNonAscii()
    {
        if (Negated || categories != 0 || builtins != Builtin.None || IgnoreCase) return true;
        return sortedRanges.Any(r => r.Hi >= 128) || nested.Any(n => n.MayContainNonAscii());
    }

    public bool ContainsAscii(int cp) => cp < 64 ? (ascii0 & (1UL << cp)) != 0 : (ascii1 & (1UL << (cp - 64))) != 0;

    private byte[] BuildBmp()
    {
        var table = new byte[0x10000 / 8];
        for (int cp = 0; cp < 0x10000; cp++)
            if (Evaluate(cp)) table[cp >> 3] |= (byte)(1 << (cp & 7));
        bmp = table;
        return table;
    }

    private bool Evaluate(int cp)
    {
        bool raw = RawContains(cp);
        if (!raw && IgnoreCase && Rune.IsValid(cp))
        {
            var r = new Rune(cp);
            // Simple case folding: the lower and upper forms. .NET's invariant casing leaves out the Turkic-sensitive
            // pairs, of which ſ (U+017F, folds to s) matters for patterns such as (?i:'s).
            int lower = Rune.ToLowerInvariant(r).Value, upper = Rune.ToUpperInvariant(r).Value;
            raw = (lower != cp && RawContains(lower)) || (upper != cp && RawContains(upper)) || (cp == 0x17F && (RawContains('s') || RawContains('S')));
        }
        return raw != Negated;
    }

    private bool RawContains(int cp)
    {
        int lo = 0, hi = sortedRanges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (cp < sortedRanges[mid].Lo) hi = mid - 1;
            else if (cp > sortedRanges[mid].Hi) lo = mid + 1;
            else return true;
        }
        if (categories != 0 && UnicodeChars.InCategories(cp, categories)) return true;
        if (builtins != Builtin.None && MatchesBuiltin(cp)) return true;
        foreach (var n in nested)
            if (n.Contains(cp)) return true;
        return false;
    }

    private bool MatchesBuiltin(int cp)
    {
        if ((builtins & Builtin.Any) != 0) return true;
        if ((builtins & Builtin.AnyButNewline) != 0 && cp != '\n') return true;
        if ((builtins & Builtin.Space) != 0 && UnicodeChars.IsWhiteSpace(cp)) return true;
        if ((builtins & Builtin.Digit) != 0 && (cp < 0x80 ? cp is >= '0' and <= '9' : UnicodeChars.Category(cp) == System.Globalization.UnicodeCategory.DecimalDigitNumber)) return true;
        if ((builtins & Builtin.Word) != 0 && (Dialect == RegexDialect.Rust ? UnicodeChars.IsRustWord(cp) : UnicodeChars.IsOnigWord(cp))) return true;
        if ((builtins & Builtin.Hex) != 0 && cp < 0x80 && char.IsAsciiHexDigit((char)cp)) return true;
        return false;
    }
}
