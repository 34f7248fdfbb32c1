using FuseSharp.Tokenization.Patterns;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization;

/// <summary>
/// What a split or replace looks for (HF <c>Pattern</c>): a regex, a literal string, or a per-character predicate
/// (each matching character is its own match). <see cref="FindMatches"/> returns ranges covering the whole text.
/// </summary>
public abstract class SplitPattern
{
    /// <summary>A regex (or an equivalent hand-written scanner).</summary>
    public static SplitPattern Regex(IWordScanner regex) => new RegexPattern(regex);

    /// <summary>A literal string (an empty literal matches nothing).</summary>
    public static SplitPattern Literal(string literal) => new LiteralPattern(literal);

    /// <summary>Every code point for which <paramref name="predicate"/> holds, one match each.</summary>
    public static SplitPattern Chars(Func<int, bool> predicate) => new PredicatePattern(predicate);

    /// <summary>
    /// Reads HF's pattern object: <c>{"String": "..."}</c> (a literal) or <c>{"Regex": "..."}</c> (an Oniguruma regex).
    /// </summary>
    public static SplitPattern FromJson(JsonSection j)
    {
        if (j.Has("String")) return Literal(j.GetString("String"));
        if (j.Has("Regex")) return PreTokenizers.FastSplitPatterns.ForRegex(j.GetString("Regex"));
        throw j.Error("a pattern must be {\"String\": ...} or {\"Regex\": ...}");
    }

    /// <summary>The scanner behind a regex pattern, or null for literal and character patterns.</summary>
    public IWordScanner? Scanner => (this as RegexPattern)?.Inner;

    /// <summary>Covering ranges of <paramref name="text"/>, in order, each flagged as a match or the gap between matches.</summary>
    public abstract List<(int Start, int End, bool IsMatch)> FindMatches(string text);

    private static List<(int, int, bool)> Cover(string text, List<(int Start, int End)> matches)
    {
        var result = new List<(int, int, bool)>(matches.Count * 2 + 1);
        if (text.Length == 0)
        {
            result.Add((0, 0, false));
            return result;
        }
        int prev = 0;
        foreach (var (s, e) in matches)
        {
            if (prev != s) result.Add((prev, s, false));
            result.Add((s, e, true));
            prev = e;
        }
        if (prev != text.Length) result.Add((prev, text.Length, false));
        return result;
    }

    private sealed class RegexPattern(IWordScanner regex) : SplitPattern
    {
        public IWordScanner Inner => regex;

        public override List<(int Start, int End, bool IsMatch)> FindMatches(string text)
        {
            var matches = new List<(int Start, int End)>();
            if (text.Length > 0) regex.FindAll(text, matches);
            return Cover(text, matches);
        }
    }

    private sealed class LiteralPattern(string literal) : SplitPattern
    {
        public override List<(int Start, int End, bool IsMatch)> FindMatches(string text)
        {
            var matches = new List<(int Start, int End)>();
            if (literal.Length > 0)
            {
                for (int at = text.IndexOf(literal, StringComparison.Ordinal); at >= 0; at = text.IndexOf(literal, at + literal.Length, StringComparison.Ordinal))
                    matches.Add((at, at + literal.Length));
            }
            return Cover(text, matches);
        }
    }

    private sealed class PredicatePattern(Func<int, bool> predicate) : SplitPattern
    {
        public override List<(int Start, int End, bool IsMatch)> FindMatches(string text)
        {
            var matches = new List<(int Start, int End)>();
            for (int i = 0; i < text.Length;)
            {
                int start = i;
                int cp = UnicodeNormalization.NextCodePoint(text, ref i);
                if (predicate(cp)) matches.Add((start, i));
            }
            return Cover(text, matches);
        }
    }
}
