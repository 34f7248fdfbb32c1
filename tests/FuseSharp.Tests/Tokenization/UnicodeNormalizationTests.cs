using System.Text.Json;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Unicode;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// NFC/NFD/NFKC/NFKD against Python's unicodedata (Fixtures/tokenization/unicode_normalization.jsonl): every code
/// point with a decomposition or a combining class, and random sequences of starters, marks and Hangul jamo.
/// </summary>
public class UnicodeNormalizationTests
{
    [Fact]
    public void AllFormsMatchPythonUnicodedata()
    {
        int n = 0;
        var failures = new List<string>();
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenization", "unicode_normalization.jsonl")))
        {
            using var d = JsonDocument.Parse(line);
            var r = d.RootElement;
            var text = r.GetProperty("text").GetString()!;
            foreach (var (key, form) in new[] { ("nfc", UnicodeForm.Nfc), ("nfd", UnicodeForm.Nfd), ("nfkc", UnicodeForm.Nfkc), ("nfkd", UnicodeForm.Nfkd) })
            {
                var got = UnicodeNormalization.Normalize(text, form);
                if (got != r.GetProperty(key).GetString()) failures.Add($"{key}({FixtureCaseTests.Show(text)}) = {FixtureCaseTests.Show(got)}");
            }
            n++;
        }
        Assert.True(n > 9000);
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
    }

    [Fact]
    public void ProvenanceCoversWhatEachCharacterCameFrom()
    {
        // "e" + U+0301 composes to "é", which covers both input code units; "ﬁ" expands to "f" "i", each covering "ﬁ".
        var items = UnicodeNormalization.NormalizeWithSources("xe\u0301ﬁ", UnicodeForm.Nfkc);
        Assert.Equal([('x', 0, 1), ('é', 1, 3), ('f', 3, 4), ('i', 3, 4)], items.Select(i => ((char)i.CodePoint, i.Start, i.End)));
    }

    [Fact]
    public void NormalizedStringKeepsOffsetsIntoTheOriginal()
    {
        var n = new NormalizedString("Ｈｅｌｌｏ ﬁne");
        n.NormalizeUnicode(UnicodeForm.Nfkc);
        n.Lowercase();
        n.Prepend("▁");
        Assert.Equal("▁hello fine", n.Normalized);
        Assert.Equal((0, 5), n.ToOriginal(0, 6));   // "▁hello" covers "Ｈｅｌｌｏ"
        Assert.Equal((6, 7), n.ToOriginal(7, 9));   // "fi" covers "ﬁ"
        var slice = n.Slice(7, 11);
        Assert.Equal("fine", slice.Normalized);
        Assert.Equal("ﬁne", slice.Original);
        Assert.Equal(6, slice.OriginalShift);
    }

    [Fact]
    public void LowercaseUsesTheFullMapping()
    {
        var n = new NormalizedString("İSTANBUL ΣΑΣ");
        n.Lowercase();
        // U+0130 lowercases to "i̇" (two characters); no final-sigma rule (Rust char::to_lowercase).
        Assert.Equal("i\u0307stanbul σασ", n.Normalized);
        Assert.Equal((0, 1), n.ToOriginal(0, 2));
    }
}
