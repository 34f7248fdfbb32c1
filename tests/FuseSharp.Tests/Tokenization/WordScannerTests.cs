using FsCheck;
using FsCheck.Fluent;
using FuseSharp.Tokenization.Patterns;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>The hand-written scanners return exactly what the regex engine returns for their patterns.</summary>
public class WordScannerTests
{
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // Letters, digits, spaces and newlines of several kinds, apostrophes and case variants, astral letters (𝐀, 𠀀),
    // astral digits (𝟘), emoji, combining marks.
    internal static readonly string[] Atoms =
    [
        "a", "Z", "é", "ß", "s", "S", "ſ", "t", "T", "r", "e", "E", "v", "m", "l", "L", "d", "'", "’", " ", "  ", "\t", "\n", "\r\n", "\r",
        "\u00A0", "\u3000", "\u2028", "0", "7", "١", "²", "Ⅻ", ".", ",", "!", "?", "-", "_", "(", "@", "#", "$", "中", "文", "ア",
        "𝐀", "𠀀", "𝟘", "😀", "👍🏽", "\u0301", "\u200B", "\uFEFF", "Ё", "ы", "ا", "ह", "\u093F",
    ];

    public static TheoryData<string> Patterns() => new() { Gpt2, Llama3, Qwen2 };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void ScannerEqualsRegexOnFixtureTexts(string pattern)
    {
        var scanner = WordScanners.For(pattern)!;
        var regex = new TokenizerRegex(pattern);
        foreach (var text in TokenizerFixtures.Cases.Select(c => c.Text).Distinct()) AssertSame(scanner, regex, text);
    }

    [Theory]
    [MemberData(nameof(Patterns))]
    public void ScannerEqualsRegexOnRandomText(string pattern)
    {
        var scanner = WordScanners.For(pattern)!;
        var regex = new TokenizerRegex(pattern);
        var gen = Gen.ListOf(Gen.Elements(Atoms)).Select(parts => string.Concat(parts));
        Prop.ForAll(gen.ToArbitrary(), text =>
        {
            AssertSame(scanner, regex, text);
            return true;
        }).QuickCheckThrowOnFailure();
    }

    private static void AssertSame(IWordScanner scanner, TokenizerRegex regex, string text)
    {
        var a = new List<(int, int)>();
        var b = new List<(int, int)>();
        scanner.FindAll(text, a);
        regex.FindAll(text, b);
        Assert.True(a.SequenceEqual(b), $"{FixtureCaseTests.Show(text)}: scanner [{string.Join(" ", a)}] regex [{string.Join(" ", b)}]");
    }
}
