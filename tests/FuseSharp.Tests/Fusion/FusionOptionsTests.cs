using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary>Fusion options beyond the reference settings: temperature, fp32, per-token selection; packing batches; copy and FuseChat alignment.</summary>
public sealed class FusionOptionsTests : ScratchFolderTest
{
    private static FusionRow Row(double[] metrics, float[]?[]? tokenMetrics = null)
    {
        // Three positions; the target's top-2 and two sources with different supports (one empty at position 2).
        var target = SparseRows.Dense([10, 11, 10, 12, 13, 10], [2f, 1f, 3f, 0f, 1f, 1f], 2);
        var s0 = new SparseRows([0, 1, 3, 4], [20, 21, 22, 23], [1f, 4f, 2f, 1f]);
        var s1 = new SparseRows([0, 2, 3, 3], [30, 31, 32], [5f, 5f, 1f]);
        return new FusionRow { InputIds = [1, 2, 3], Labels = [1, 2, 3], Target = target, Sources = [s0, s1], Metrics = metrics, TokenMetrics = tokenMetrics };
    }

    [Fact]
    public void TemperatureDividesTheLogitsBeforeTheSoftmax()
    {
        var rows = new SparseRows([0, 2], [5, 6], [2f, 0f]);
        var p = DistributionFusion.Softmax(rows, 2f, FusionPrecision.Fp32);
        double e = Math.Exp(1.0);
        Assert.Equal(e / (e + 1), p.Values[0], 6);
        var q = DistributionFusion.Softmax(rows, 2f, FusionPrecision.Bf16);
        Assert.Equal(CandidateSelection.Bf16((float)(e / (e + 1))), q.Values[0], 2);
        Assert.All(q.Values, v => Assert.Equal(v, CandidateSelection.Bf16(v))); // bf16 values
    }

    [Fact]
    public void EmptySourceListsFallBackToTheTargetAndFp32SumsToOne()
    {
        var fused = DistributionFusion.Fuse(Row([3.0, 1.0, 2.0]), new FusionOptions { Rule = FusionRule.MinCe, Precision = FusionPrecision.Fp32 });
        Assert.All(fused.Choice, c => Assert.Equal(1, c));
        var single = DistributionFusion.Fuse(Row([3.0, 9.0, 1.0]), new FusionOptions { Precision = FusionPrecision.Fp32 });
        Assert.All(single.Choice, c => Assert.Equal(2, c));
        Assert.Equal([10, 13], single.Distribution.IdsAt(2).ToArray()); // source 1 is empty at position 2: the target's own
        for (int t = 0; t < 3; t++) Assert.Equal(1.0, single.Distribution.ValuesAt(t).ToArray().Sum(x => (double)x), 5);
        var avg = DistributionFusion.Fuse(Row([3.0, 1.0, 2.0]), new FusionOptions { Rule = FusionRule.AvgCe, Precision = FusionPrecision.Fp32 });
        for (int t = 0; t < 3; t++) Assert.Equal(1.0, avg.Distribution.ValuesAt(t).ToArray().Sum(x => (double)x), 5);
        Assert.Equal(3, avg.Weights!.Length);
    }

    [Fact]
    public void PerTokenMinCePicksTheLowestCeAtEachPositionAmongCandidatesThatHaveOne()
    {
        float nan = float.NaN;
        var row = Row([1.0, 1.0, 1.0], [[2f, 2f, 2f], [1f, 3f, nan], [3f, 1f, nan]]);
        var fused = DistributionFusion.Fuse(row, new FusionOptions { Granularity = MetricGranularity.Token });
        Assert.Equal([1, 2, 0], fused.Choice);
        Assert.Equal([20], fused.Distribution.IdsAt(0).ToArray());
        Assert.Equal([32], fused.Distribution.IdsAt(1).ToArray());
        Assert.Equal([10, 13], fused.Distribution.IdsAt(2).ToArray());
        var avg = DistributionFusion.Fuse(row, new FusionOptions { Granularity = MetricGranularity.Token, Rule = FusionRule.AvgCe, Precision = FusionPrecision.Fp32 });
        Assert.Equal([10, 13], avg.Distribution.IdsAt(2).ToArray()); // only the target has a CE at position 2
        var e = Assert.Throws<FuseSharp.Fusion.FusionException>(() => DistributionFusion.Fuse(Row([1.0, 1.0, 1.0]), new FusionOptions { Granularity = MetricGranularity.Token }));
        Assert.Contains("per-position", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryPackingBatchEndsWithAShortBlock()
    {
        var docs = Enumerable.Range(0, 5).Select(d =>
        {
            int n = 7 + d;
            return new FusionRow
            {
                InputIds = Enumerable.Range(0, n).ToArray(),
                Labels = Enumerable.Range(0, n).ToArray(),
                Target = SparseRows.Dense(new int[n], new float[n], 1),
                Sources = [],
                Metrics = [d + 0.5],
                Segments = [new RowSegment(d, 0, n, 0)],
            };
        }).ToList();
        var blocks = Packer.Pack(docs, new PackingOptions { BlockSize = 10, BatchDocuments = 2 }).ToList();
        // Batches {7, 8}, {9, 10}, {11}: 15 -> 10 + 5, 19 -> 10 + 9, 11 -> 10 + 1.
        Assert.Equal([10, 5, 10, 9, 10, 1], blocks.Select(b => b.Positions));
        Assert.Equal((7 * 0.5 + 3 * 1.5) / 10, blocks[0].Metrics[0], 12);
        Assert.Equal([new RowSegment(1, 3, 8, 0)], blocks[1].Segments);
        var one = Packer.Pack(docs, new PackingOptions { BlockSize = 10, BatchDocuments = 0 }).ToList();
        Assert.Equal(5, one.Count); // 45 positions in one batch
    }

    [Fact]
    public void SameVocabularySourcesAreCopiedAndMustTokenizeIdentically()
    {
        var tok = new ToyTokenizer();
        var corpus = Scratch("c.jsonl");
        File.WriteAllLines(corpus, ["{\"text\": \"one two\"}", "{\"text\": \"three\"}"]);
        RepresentStage.Run(corpus, tok, new ToyScorer(tok.VocabSize), Scratch("target"), new RepresentOptions { K = 4 });
        var other = new ToyScorer(tok.VocabSize);
        RepresentStage.Run(corpus, tok, other, Scratch("source"), new RepresentOptions { K = 4, Chat = new FuseSharp.Fusion.Text.ChatFormat { UserPrefix = "x" } });
        var vocab = new AlignTokenizer(FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(tok));
        AlignStage.Run(StoreReader.Open(Scratch("target")), StoreReader.Open(Scratch("source")), vocab, vocab, null, Scratch("copied"), new AlignStageOptions { Copy = true });
        var src = StoreReader.Open(Scratch("source")).ReadRows().ToList();
        var copied = StoreReader.Open(Scratch("copied")).ReadRows().ToList();
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(src[i].TopK!.Ids, copied[i].Lists[0].Rows.Ids);
            Assert.Equal(src[i].TopK!.Values, copied[i].Lists[0].Rows.Values);
        }
        // A source tokenized differently cannot be copied.
        File.WriteAllLines(Scratch("c2.jsonl"), ["{\"text\": \"one two\"}", "{\"text\": \"three\"}"]);
        RepresentStage.Run(Scratch("c2.jsonl"), tok, other, Scratch("noeos"), new RepresentOptions { K = 4, AppendEos = false });
        var e = Assert.Throws<FuseSharp.Fusion.FusionException>(() => AlignStage.Run(StoreReader.Open(Scratch("target")), StoreReader.Open(Scratch("noeos")), vocab, vocab, null, Scratch("bad"), new AlignStageOptions { Copy = true }));
        Assert.Contains("tokenization differs", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FuseChatAlignmentUsesDecodedStrings()
    {
        var sp = new ToyTokenizer("▁");
        var bpe = new ToyTokenizer("Ġ");
        var corpus = Scratch("c.jsonl");
        File.WriteAllLines(corpus, ["{\"text\": \"the cat sat\"}"]);
        RepresentStage.Run(corpus, sp, new ToyScorer(sp.VocabSize), Scratch("t"), new RepresentOptions { K = 3 });
        RepresentStage.Run(corpus, bpe, new ToyScorer(bpe.VocabSize), Scratch("s"), new RepresentOptions { K = 3 });
        var spv = FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(sp);
        var bpv = FuseSharp.Fusion.Vocab.TokenVocabulary.FromTokenizer(bpe);
        var e = Assert.Throws<FuseSharp.Fusion.FusionException>(() => AlignStage.Run(StoreReader.Open(Scratch("t")), StoreReader.Open(Scratch("s")), new AlignTokenizer(spv), new AlignTokenizer(bpv), null, Scratch("x"),
            new AlignStageOptions { Aligner = new DistributionAlignerOptions { Method = AlignmentMethod.FuseChatEm } }));
        Assert.Contains("decoders", e.Message, StringComparison.Ordinal);
        var report = AlignStage.Run(StoreReader.Open(Scratch("t")), StoreReader.Open(Scratch("s")), new AlignTokenizer(spv, id => sp.Decode([id])), new AlignTokenizer(bpv, id => bpe.Decode([id])), null, Scratch("a"),
            new AlignStageOptions { Aligner = new DistributionAlignerOptions { Method = AlignmentMethod.FuseChatEm } });
        // The toy tokenizers decode "▁c" and "Ġc" alike (" c"), so EM matches every position.
        Assert.All(report.Group("target positions"), g => Assert.Equal("matched 1:1 (exact)", g.Label));
        var row = StoreReader.Open(Scratch("a")).ReadRows().Single();
        Assert.All(row.Lists[0].Outcomes!, o => Assert.Equal((byte)AlignmentOutcome.Exact, o));
        Assert.Equal("fusechat-v2", StoreReader.Open(Scratch("a")).Manifest.Info["dtw"]!.GetValue<string>());
    }
}
