using FuseSharp.Tokenization.Training;
using Xunit;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary>SentencePiece's piece validity rules (<c>IsValidSentencePiece</c>) and character coverage.</summary>
public class PieceRulesTests
{
    private static bool Valid(PieceRules rules, string piece) => rules.IsValid(UnigramReferenceTests.Cps(piece));

    [Theory]
    [InlineData("▁the", true)]
    [InlineData("the", true)]
    [InlineData("▁", true)]
    [InlineData("the▁", false)]      // the marker only as a prefix
    [InlineData("▁▁", false)]        // no whitespace-only pieces
    [InlineData("a b", false)]       // no raw spaces
    [InlineData("e.", false)]        // Latin letter + common punctuation
    [InlineData(".,", true)]         // common + common
    [InlineData("1,", true)]         // digits are common script
    [InlineData("ab1", false)]       // split_by_number: digits do not join letters
    [InlineData("12", true)]
    [InlineData("▁(", true)]
    [InlineData("café", true)]       // Latin-1 letters are Latin
    [InlineData("e\u0301x", true)]  // a combining mark takes the script of the letter before it
    [InlineData("aж", false)]        // Latin + Cyrillic
    [InlineData("ひらカタ漢字", true)] // Hiragana, Katakana and Han count as one script
    [InlineData("ーー", true)]        // the prolonged sound mark is Han here too
    [InlineData("한글", true)]
    [InlineData("a한", false)]
    [InlineData("abcdefghijklmnopq", false)] // 17 > 16 characters
    public void SentencePieceDefaults(string piece, bool expected) =>
        Assert.Equal(expected, Valid(PieceRules.SentencePiece(16, splitByScript: true, splitByNumber: true, splitDigits: false), piece));

    [Fact]
    public void SwitchesRelaxOrTightenTheRules()
    {
        Assert.True(Valid(PieceRules.SentencePiece(16, true, splitByNumber: false, false), "ab1"));
        Assert.True(Valid(PieceRules.SentencePiece(16, splitByScript: false, true, false), "e."));
        Assert.False(Valid(PieceRules.SentencePiece(16, true, true, splitDigits: true), "12"));
        Assert.True(Valid(PieceRules.SentencePiece(16, true, true, splitDigits: true), "1"));
        Assert.True(Valid(PieceRules.LengthOnly(4), "e.▁▁"));
        Assert.False(Valid(PieceRules.LengthOnly(4), "e.▁▁x"));
        Assert.False(Valid(PieceRules.LengthOnly(16).Reserving(["<s>"]), "<s>"));
        Assert.True(Valid(PieceRules.LengthOnly(16).Reserving(["<s>"]), "<s"));
    }

    [Fact]
    public void CoverageKeepsTheMostFrequentCharactersUntilTheShareIsReached()
    {
        var counts = new Dictionary<int, long> { ['a'] = 50, ['b'] = 30, ['c'] = 15, ['d'] = 4, ['e'] = 1 };
        Assert.Equal("abcde", string.Concat(PieceRules.RequiredCharacters(counts, 1.0).Select(c => (char)c.CodePoint)));
        // 0.95: after a, b, c the share is 0.95, so d and e are left out.
        Assert.Equal("abc", string.Concat(PieceRules.RequiredCharacters(counts, 0.95).Select(c => (char)c.CodePoint)));
        Assert.Equal("abcd", string.Concat(PieceRules.RequiredCharacters(counts, 0.96).Select(c => (char)c.CodePoint)));
        // Ties in count go by code point.
        var tie = new Dictionary<int, long> { ['z'] = 2, ['y'] = 2, ['x'] = 5 };
        Assert.Equal("xyz", string.Concat(PieceRules.RequiredCharacters(tie, 1.0).Select(c => (char)c.CodePoint)));
    }
}
