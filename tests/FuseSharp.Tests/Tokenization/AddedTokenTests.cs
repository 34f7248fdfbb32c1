using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PreTokenizers;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>Added tokens are cut out as Hugging Face's AddedVocabulary does (cases from its unit tests).</summary>
public class AddedTokenTests
{
    private static List<(string Text, int? Id)> Split(AddedVocabulary v, INormalizer? n, string text) =>
        v.ExtractAndNormalize(n, text).Pieces.Select(p => (p.Normalized.Normalized, p.Tokens?[0].Id)).ToList();

    [Fact]
    public void OptionsUseCases()
    {
        var lower = new LowercaseNormalizer();
        var v = new AddedVocabulary([
            new AddedToken(0, "my", false, LStrip: true, RStrip: true, Normalized: true),
            new AddedToken(1, "name", false, Normalized: true),
            new AddedToken(2, "ony", false, SingleWord: true, Normalized: true),
            new AddedToken(3, "[CLS]", true),
            new AddedToken(4, "[SEP]", true)], lower);
        Assert.Equal([("[CLS]", 3), (" my ", 0), ("name", 1), (" is anthony ", null), ("[SEP]", 4)], Split(v, lower, "[CLS] My name is Anthony [SEP]"));
    }

    [Fact]
    public void SingleWord()
    {
        var lower = new LowercaseNormalizer();
        var v = new AddedVocabulary([new AddedToken(0, "<mask>", false, SingleWord: true, Normalized: true)], lower);
        Assert.Equal([("<mask>", 0), (" my name ", null), ("<mask>", 0), (" a<mask> <mask>ony ", null), ("<mask>", 0)],
            Split(v, lower, "<mask> My name <mask> A<mask> <mask>ony <mask>"));
    }

    [Fact]
    public void LeftmostLongestAndNormalizedMatching()
    {
        // "<s>" is normalized (matched as "▁<s>" after Prepend), "</s>" is not: as OpenLLaMA's tokenizer.json.
        var prepend = new PrependNormalizer("▁");
        var v = new AddedVocabulary([
            new AddedToken(0, "<unk>", true, Normalized: true), new AddedToken(1, "<s>", true, Normalized: true),
            new AddedToken(2, "</s>", true), new AddedToken(3, "</s>x", true)], prepend);
        Assert.Equal([("▁<unk>", 0), ("<s>", null), ("</s>x", 3)], Split(v, prepend, "<unk><s></s>x"));
    }

    [Fact]
    public void RStripSwallowsFollowingSpace()
    {
        var tok = new Tokenizer(new WordLevelModel(new Dictionary<string, int> { ["<unk>"] = 0, ["Hi"] = 1 }, "<unk>"), null, new WhitespaceSplitPreTokenizer(), null, null,
            [new AddedToken(5, "<|end|>", true, RStrip: true)]);
        var e = tok.Encode("<|end|>  Hi");
        Assert.Equal([5, 1], e.Ids);
        Assert.Equal([(0, 9), (9, 11)], e.Offsets);
        Assert.Equal([true, false], e.SpecialTokensMask);
        Assert.Equal("Hi", tok.Decode(e.Ids, skipSpecialTokens: true));
    }
}
