using System.Globalization;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Patterns;

/// <summary>Finds the non-overlapping matches of a split pattern (a regex or a hand-written equivalent).</summary>
public interface IWordScanner
{
    /// <summary>Appends every match, left to right, as the regex iterator reports them.</summary>
    void FindAll(ReadOnlySpan<char> text, List<(int Start, int End)> matches);
}

/// <summary>
/// Hand-written scanners for the split regexes almost every byte-level BPE tokenizer uses (GPT-2, Llama-3/cl100k-style,
/// Qwen2). Each follows the regex alternation in order, with the same backtracking outcomes, so it returns exactly the
/// matches <see cref="TokenizerRegex"/> returns for the pattern (tests compare both on real and random text); they are
/// several times faster because they classify each code point once and never backtrack.
/// </summary>
public static class WordScanners
{
    private const byte Other = 0, Letter = 1, Number = 2, Space = 3;

    // Class of every BMP code unit: letter (L), number (N), white space (\s), other.
    private static readonly byte[] BmpClass = BuildClasses();

    private static byte[] BuildClasses()
    {
        var t = new byte[0x10000];
        for (int c = 0; c < 0x10000; c++)
        {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            t[c] = Classify(c);
        }
        return t;
    }

    private static byte Classify(int cp)
    {
        if (UnicodeChars.IsWhiteSpace(cp)) return Space;
        var cat = UnicodeChars.Category(cp);
        if ((UnicodeChars.LetterMask & UnicodeChars.Bit(cat)) != 0) return Letter;
        if ((UnicodeChars.NumberMask & UnicodeChars.Bit(cat)) != 0) return Number;
        return Other;
    }

    /// <summary>The class of the code point at <paramref name="i"/> and its length in UTF-16 units (0 at the end).</summary>
    private static byte ClassAt(ReadOnlySpan<char> s, int i, out int len)
    {
        if (i >= s.Length)
        {
            len = 0;
            return 255;
        }
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            len = 2;
            return Classify(char.ConvertToUtf32(c, s[i + 1]));
        }
        len = 1;
        return BmpClass[c];
    }

    private static int RunOf(ReadOnlySpan<char> s, int i, byte cls)
    {
        while (ClassAt(s, i, out int len) == cls) i += len;
        return i;
    }

    private static int RunOfOther(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length && ClassAt(s, i, out int len) == Other) i += len;
        return i;
    }

    /// <summary>The GPT-2 pattern <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    public static IWordScanner Gpt2 { get; } = new Gpt2Scanner();

    /// <summary>The Llama-3 pattern (numbers in runs of at most 3).</summary>
    public static IWordScanner Llama3 { get; } = new Llama3Scanner(3);

    /// <summary>The Qwen2 pattern (one digit per number).</summary>
    public static IWordScanner Qwen2 { get; } = new Llama3Scanner(1);

    /// <summary>The scanner for a pattern, or null when the pattern is not one of the known ones.</summary>
    public static IWordScanner? For(string pattern) => pattern switch
    {
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" => Gpt2,
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" => Llama3,
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" => Qwen2,
        _ => null,
    };

    // 's 't 're 've 'm 'll 'd at i (s[i] == '\''); returns the match length or 0. With ignoreCase, Unicode simple case
    // folding as the regex engines apply it (S, and ſ for s).
    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        static char Fold(char c, bool ic) => !ic ? c : c == '\u017F' ? 's' : c < 0x80 ? (char)(c | 0x20) : c;
        if (i + 1 >= s.Length) return 0;
        char a = Fold(s[i + 1], ignoreCase);
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if (i + 2 >= s.Length) return 0;
        char b = Fold(s[i + 2], ignoreCase);
        return (a, b) is ('r', 'e') or ('v', 'e') or ('l', 'l') ? 3 : 0;
    }

    // \s+(?!\S)|\s+ at a white-space run [i, j): the run without its last character when a non-space follows and
    // the run is longer than one character, else the whole run.
    private static int SpaceRun(ReadOnlySpan<char> s, int i, int j) => j < s.Length && j - i > 1 ? j - 1 : j;

    // These patterns match at every position, so the matches tile the text: each one starts where the last ended.
    private abstract class TilingScanner : IWordScanner
    {
        public void FindAll(ReadOnlySpan<char> s, List<(int Start, int End)> matches)
        {
            int i = 0;
            while (i < s.Length)
            {
                int end = Next(s, i);
                matches.Add((i, end));
                i = end;
            }
        }

        /// <summary>The end of the match that starts at <paramref name="i"/>.</summary>
        protected abstract int Next(ReadOnlySpan<char> s, int i);
    }

    private sealed class Gpt2Scanner : TilingScanner
    {
        protected override int Next(ReadOnlySpan<char> s, int i)
        {
            if (s[i] == '\'')
            {
                int c = Contraction(s, i, ignoreCase: false);
                if (c > 0) return i + c;
            }
            byte cls = ClassAt(s, i, out int len);
            if (s[i] == ' ')
            {
                byte next = ClassAt(s, i + 1, out _);
                if (next == Letter) return RunOf(s, i + 1, Letter);
                if (next == Number) return RunOf(s, i + 1, Number);
                if (next == Other) return RunOfOther(s, i + 1);
            }
            switch (cls)
            {
                case Letter: return RunOf(s, i + len, Letter);
                case Number: return RunOf(s, i + len, Number);
                case Other: return RunOfOther(s, i + len);
                default: return SpaceRun(s, i, RunOf(s, i + len, Space));
            }
        }
    }

    private sealed class Llama3Scanner(int maxDigits) : TilingScanner
    {
        protected override int Next(ReadOnlySpan<char> s, int i)
        {
            if (s[i] == '\'')
            {
                int c = Contraction(s, i, ignoreCase: true);
                if (c > 0) return i + c;
            }
            byte cls = ClassAt(s, i, out int len);
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (cls == Letter) return RunOf(s, i + len, Letter);
            if (cls != Number && s[i] != '\r' && s[i] != '\n' && ClassAt(s, i + len, out _) == Letter) return RunOf(s, i + len, Letter);
            // \p{N}{1,maxDigits}
            if (cls == Number)
            {
                int j = i, n = 0;
                while (n < maxDigits && ClassAt(s, j, out int l) == Number)
                {
                    j += l;
                    n++;
                }
                return j;
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            int start = -1;
            if (s[i] == ' ' && ClassAt(s, i + 1, out _) == Other) start = i + 1;
            else if (cls == Other) start = i;
            if (start >= 0)
            {
                int j = RunOfOther(s, start);
                while (j < s.Length && s[j] is '\r' or '\n') j++;
                return j;
            }
            // White space: \s*[\r\n]+ ends after the last newline of the run; else \s+(?!\S) | \s+.
            int runEnd = RunOf(s, i, Space);
            for (int k = runEnd - 1; k >= i; k--)
                if (s[k] is '\r' or '\n') return k + 1;
            return SpaceRun(s, i, runEnd);
        }
    }

    internal static string Describe(IWordScanner scanner) => scanner switch
    {
        TokenizerRegex r => "regex /" + r.Pattern + "/",
        _ => scanner.GetType().Name.ToLower(CultureInfo.InvariantCulture),
    };
}
