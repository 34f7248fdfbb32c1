using System.Text.Json;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Patterns;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// The code-point regex engine against Python's <c>regex</c> module (Fixtures/tokenization/regex_cases.jsonl, from
/// tools/gen_tokenization_test_data.py): tokenizer split patterns, lazy/possessive quantifiers, atomic groups,
/// look-around, anchors, case-insensitive groups, astral ranges. Empty matches are ignored (splits drop them, and the
/// engines differ on empty matches after a match).
/// </summary>
public class RegexEngineTests
{
    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.Value.Count; i++) data.Add(i);
        return data;
    }

    private static readonly Lazy<List<(string Pattern, string Text, List<(int, int)> Matches)>> Cases = new(() =>
        File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenization", "regex_cases.jsonl")).Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            var r = d.RootElement;
            return (r.GetProperty("pattern").GetString()!, r.GetProperty("text").GetString()!,
                r.GetProperty("matches").EnumerateArray().Select(m => (m[0].GetInt32(), m[1].GetInt32())).ToList());
        }).ToList());

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void MatchesPythonRegex(int index)
    {
        var (pattern, text, expected) = Cases.Value[index];
        var got = new List<(int Start, int End)>();
        new TokenizerRegex(pattern).FindAll(text, got);
        var cp = CodePointIndex(text);
        var gotCp = got.Where(m => m.End > m.Start).Select(m => (cp[m.Start], cp[m.End])).ToList();
        Assert.Equal(expected.Where(m => m.Item2 > m.Item1), gotCp);
    }

    internal static int[] CodePointIndex(string text)
    {
        var map = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[i] = n;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length) map[++i] = n;
            n++;
        }
        map[text.Length] = n;
        return map;
    }

    [Theory]
    [InlineData(@"(a)\1", "back-reference")]
    [InlineData(@"\p{Han}+", "Han")]
    [InlineData(@"(?x) a b", "inline flag 'x'")]
    [InlineData(@"[a-z&&[^aeiou]]", "intersection")]
    [InlineData(@"abc(", "missing ')'")]
    [InlineData(@"a{3,1}", "m < n")]
    [InlineData(@"*a", "without anything to repeat")]
    [InlineData(@"(?<=a+)b", "fixed length")]
    public void UnsupportedOrMalformedPatternsAreNamed(string pattern, string fragment)
    {
        var e = Assert.Throws<TokenizerException>(() => new TokenizerRegex(pattern));
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Contains(pattern, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AstralLettersAndDigitsAreCodePoints()
    {
        // .NET's Regex sees surrogates, not letters: \p{L}+ would not match 𝐀𝐁, and \p{N}{1,3} would count halves.
        var m = new List<(int, int)>();
        new TokenizerRegex(@"\p{L}+|\p{N}{1,3}").FindAll("𝐀𝐁𝟘𝟙𝟚𝟛", m);
        Assert.Equal([(0, 4), (4, 10), (10, 12)], m);
    }

    [Fact]
    public void RustDialectWordClassAndAnchors()
    {
        var m = new List<(int, int)>();
        // Rust's \w includes letter numbers (Ⅻ) and circled letters; ^/$ are the text boundaries.
        new TokenizerRegex(@"\w+", RegexDialect.Rust).FindAll("aⅫⓐ-b", m);
        Assert.Equal([(0, 3), (4, 5)], m);
        m.Clear();
        new TokenizerRegex(@"\w+", RegexDialect.Oniguruma).FindAll("aⅫⓐ-b", m);
        Assert.Equal([(0, 1), (4, 5)], m);
        m.Clear();
        new TokenizerRegex(@"b$", RegexDialect.Rust).FindAll("ab\nab", m);
        Assert.Equal([(4, 5)], m);
        m.Clear();
        new TokenizerRegex(@"b$").FindAll("ab\nab", m);
        Assert.Equal([(1, 2), (4, 5)], m);
    }
}
