using FuseSharp.Fusion;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Vocab;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public sealed class VocabMapStageTests : ScratchFolderTest
{
    [Fact]
    public void MsFromACorpusMapsCoAlignedTokens()
    {
        var sp = new ToyTokenizer("▁");
        var bpe = new ToyTokenizer("Ġ");
        var corpus = Scratch("corpus.jsonl");
        File.WriteAllLines(corpus, ["{\"text\": \"the cat sat on the mat\"}", "{\"text\": \"a cat, a hat.\"}"]);
        var spVocab = FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(sp, name: "sp");
        var bpeVocab = FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(bpe, name: "bpe");
        var counts = VocabMapStage.CountCorpus(corpus, sp, bpe, spVocab, bpeVocab);
        Assert.Equal(2, counts.Documents);
        var (map, report) = VocabMapStage.Run(bpeVocab, spVocab, VocabMapType.Ms, counts);
        // "Ġc" was aligned with "▁c" (same decoded text " c"): MS maps it there; BOS/EOS are forced.
        Assert.Equal(spVocab.Id("▁c"), map[bpeVocab.Id("Ġc")!.Value]);
        Assert.Equal(spVocab.EosId, map[bpeVocab.EosId!.Value]);
        Assert.Equal(-1, map[bpeVocab.Id("Ġz")!.Value]); // never seen: unmapped (list form: the base unk)
        Assert.Equal(0, map.ToIdList(map.UnmappedId!.Value)[bpeVocab.Id("Ġz")!.Value]);
        Assert.Contains(report.Group("blending tokens"), g => g.Label == "forced (BOS/EOS)");
        Assert.Throws<FusionException>(() => VocabMapStage.Run(bpeVocab, spVocab, VocabMapType.Ms));
    }

    [Fact]
    public void MinEdReportCountsDistances()
    {
        // The first 2000 NeoX pieces against all of Llama-2 (the full map is checked in VocabMapTests).
        var neox = new FuseSharp.Fusion.Vocab.TokenVocabulary(Enumerable.Range(0, 2000).Select(TestVocabularies.Neox.Piece).ToList(), "Ġ", name: "neox-2000");
        var (map, report) = VocabMapStage.Run(neox, TestVocabularies.Llama2, VocabMapType.MinEd);
        var full = TestVocabularies.NeoxToLlamaMinEd;
        for (int i = 0; i < 2000; i++) Assert.Equal(full[i], map[i]);
        long exact = report.Group("blending tokens").Single(g => g.Label.StartsWith("exact", StringComparison.Ordinal)).Count;
        Assert.Equal(Enumerable.Range(0, 2000).Count(i => full.Distances![i] == 0), exact);
        Assert.Equal(2000 - exact, report.Group("MinED distance").Sum(g => g.Count));
    }

    [Fact]
    public void UnknownMarkerIsAClearError()
    {
        var e = Assert.Throws<FusionException>(() => FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(new ToyTokenizer(""), name: "plain"));
        Assert.Contains("marker", e.Message, StringComparison.Ordinal);
        Assert.Contains("--base-marker", e.Hint, StringComparison.Ordinal);
    }
}
