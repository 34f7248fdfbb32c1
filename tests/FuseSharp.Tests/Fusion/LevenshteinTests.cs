using FuseSharp.Fusion.Alignment;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public class LevenshteinTests
{
    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "", 3)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("▁the", "the", 1)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("😀a", "a", 1)]          // one code point outside the BMP counts once
    [InlineData("𝔸𝔹", "𝔹𝔸", 2)]
    public void KnownDistances(string a, string b, int expected)
    {
        Assert.Equal(expected, Levenshtein.Distance(a, b));
        Assert.Equal(expected, Levenshtein.DistanceReference(Levenshtein.CodePoints(a), Levenshtein.CodePoints(b)));
    }

    [Fact]
    public void BitParallelEqualsPlainProgramme()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 5000; trial++)
        {
            // Lengths straddle the 64-code-point word; a small alphabet makes long matches.
            int la = rng.Next(0, trial % 10 == 0 ? 90 : 20), lb = rng.Next(0, trial % 10 == 0 ? 90 : 20);
            var a = Enumerable.Range(0, la).Select(_ => rng.Next(0, 5) + (rng.Next(8) == 0 ? 0x1F600 : 97)).ToArray();
            var b = Enumerable.Range(0, lb).Select(_ => rng.Next(0, 5) + (rng.Next(8) == 0 ? 0x1F600 : 97)).ToArray();
            int expected = Levenshtein.DistanceReference(a, b);
            Assert.Equal(expected, Levenshtein.Distance(a, b));
            int bound = rng.Next(0, 12);
            int bounded = Levenshtein.DistanceBounded(a, b, bound);
            if (expected <= bound) Assert.Equal(expected, bounded);
            else Assert.True(bounded > bound);
        }
    }

    [Fact]
    public void LoneSurrogateIsOneCodePoint()
    {
        Assert.Equal(new[] { 0xD800, 'a' }, Levenshtein.CodePoints("\uD800a"));
        Assert.Equal(new[] { 0x1F600 }, Levenshtein.CodePoints("😀"));
    }
}
