using System.Text.Json.Nodes;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public class FusionTests
{
    public static TheoryData<int> CeCases() => [.. FusionFixtures.Json("fusion_ce_cases.json").AsArray().Select(c => c!["case"]!.GetValue<int>())];

    [Theory]
    [MemberData(nameof(CeCases))]
    public void MinCeAndAvgCeMatchTheTrainer(int caseId)
    {
        var c = FusionFixtures.Json("fusion_ce_cases.json").AsArray().Single(x => x!["case"]!.GetValue<int>() == caseId)!;
        var ce = FusionFixtures.Doubles(c["metric_ce"]);
        var rewardBits = FusionFixtures.Ints(c["reward_bf16_bits"]);
        for (int i = 0; i < 3; i++)
            Assert.Equal(rewardBits[i], BFloat16Conversion.FromSingle(CandidateSelection.Reward(ce[i], FusionPrecision.Bf16)));
        Assert.Equal(c["minCE_choice"]!.GetValue<int>(), CandidateSelection.MinCe(ce, withTarget: true, FusionPrecision.Bf16));
        Assert.Equal(c["two_source_choice_no_ref"]!.GetValue<int>(), CandidateSelection.MinCe(ce.AsSpan(1), withTarget: false, FusionPrecision.Bf16));
        var w = CandidateSelection.AvgCe(ce, FusionPrecision.Bf16);
        Assert.Equal(FusionFixtures.Ints(c["avgCE_weights_bf16_bits"]), w.Select(x => (int)BFloat16Conversion.FromSingle(x)).ToArray());
        var w32 = CandidateSelection.AvgCe(ce, FusionPrecision.Fp32);
        var want32 = FusionFixtures.Doubles(c["avgCE_weights_fp32"]);
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(want32[i] - w32[i]) <= 1e-6, $"fp32 weight {i}: {w32[i]} vs {want32[i]}");
        var r32 = FusionFixtures.Doubles(c["reward_fp32"]);
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(r32[i] - CandidateSelection.Reward(ce[i], FusionPrecision.Fp32)) <= 1e-7);
    }

    [Fact]
    public void NoTargetTwoSourceTieGoesToTheSecondSource()
    {
        Assert.Equal(1, CandidateSelection.MinCe([2.0, 2.0], withTarget: false, FusionPrecision.Bf16));
        Assert.Equal(0, CandidateSelection.MinCe([2.0, 2.0], withTarget: true, FusionPrecision.Bf16));
        // 2.0078125 and 2.0 are one bf16 step apart... but equal after float32 -> bf16 rounding of 2.0078125 + 1e-12.
        Assert.Equal(0, CandidateSelection.MinCe([2.0078125 + 1e-12, 2.0], withTarget: true, FusionPrecision.Bf16));
    }

    [Fact]
    public void PackingReproducesTheReferenceBlocks()
    {
        var blocks = FusionFixtures.Lines("fusion_blocks.jsonl").ToList();
        var docs = Documents(blocks);
        var packed = Packer.Pack(docs, new PackingOptions { BlockSize = 128 }).ToList();
        Assert.Equal(blocks.Count, packed.Count);
        for (int b = 0; b < blocks.Count; b++)
        {
            var want = blocks[b];
            var got = packed[b];
            Assert.Equal(want["length"]!.GetValue<int>(), got.Positions);
            Assert.Equal(FusionFixtures.Ints(want["input_ids"]), got.InputIds);
            Assert.Equal(FusionFixtures.Ints(want["labels"]), got.Labels);
            AssertLists(want["per_step_indices"], want["per_step_logits"], got.Target);
            AssertLists(want["per_step_aligned_indices_0"], want["per_step_aligned_logits_0"], got.Sources[0]);
            AssertLists(want["per_step_aligned_indices_1"], want["per_step_aligned_logits_1"], got.Sources[1]);
            Assert.Equal(want["metric_ce"]!.GetValue<double>(), got.Metrics[0]);
            Assert.Equal(want["metric_ce_aligned_0"]!.GetValue<double>(), got.Metrics[1]);
            Assert.Equal(want["metric_ce_aligned_1"]!.GetValue<double>(), got.Metrics[2]);
            var segs = want["documents"]!.AsArray().Select(d => (d![1]!.GetValue<int>(), d[2]!.GetValue<int>(), d[3]!.GetValue<int>())).ToList();
            Assert.Equal(segs, got.Segments.Select(s => (s.Start, s.End, s.Offset)).ToList());
        }
    }

    [Fact]
    public void FusedDistributionsMatchTheCollatorAndTrainer()
    {
        var blocks = FusionFixtures.Lines("fusion_blocks.jsonl").ToList();
        var packed = Packer.Pack(Documents(blocks), new PackingOptions { BlockSize = 128 }).ToList();
        int compared = 0;
        for (int b = 0; b < blocks.Count; b++)
        {
            var row = packed[b];
            var fusion = blocks[b]["fusion"]!;
            var minCe = DistributionFusion.Fuse(row, new FusionOptions { Rule = FusionRule.MinCe });
            var avgCe = DistributionFusion.Fuse(row, new FusionOptions { Rule = FusionRule.AvgCe });
            Assert.Equal(fusion["minCE_choice"]!.GetValue<int>(), minCe.Choice[0]);
            Assert.Equal(FusionFixtures.Ints(fusion["avgCE_weights_bf16_bits"]), avgCe.Weights!.Select(x => (int)BFloat16Conversion.FromSingle(x)).ToArray());
            var target = DistributionFusion.Softmax(row.Target, 1f, FusionPrecision.Bf16);
            var singles = Enumerable.Range(0, 2).Select(s => DistributionFusion.Fuse(row, new FusionOptions { WithTarget = false, Sources = [s] })).ToArray();
            foreach (var pos in blocks[b]["positions"]!.AsArray())
            {
                int t = pos!["t"]!.GetValue<int>();
                if (t >= row.Positions) continue; // padding: the collator's one-hot on the pad id, never stored
                AssertDistribution(pos["ref"], target, t);
                AssertDistribution(pos["minCE_fused"], minCe.Distribution, t);
                AssertDistribution(pos["avgCE_fused"], avgCe.Distribution, t);
                for (int s = 0; s < 2; s++) AssertDistribution(pos[$"aligned_{s}"], singles[s].Distribution, t);
                compared++;
            }
        }
        Assert.True(compared > 40);
    }

    [Fact]
    public void NaNMetricIsAClearError()
    {
        var blocks = FusionFixtures.Lines("fusion_blocks.jsonl").ToList();
        var row = Packer.Pack(Documents(blocks), new PackingOptions { BlockSize = 128 }).First();
        row.Metrics[1] = double.NaN;
        var e = Assert.Throws<FuseSharp.Fusion.FusionException>(() => DistributionFusion.Fuse(row, new FusionOptions(), "block 0"));
        Assert.Contains("block 0", e.Message, StringComparison.Ordinal);
        Assert.Contains("filter-nan", e.Hint, StringComparison.Ordinal);
    }

    /// <summary>
    /// The six FuseLLM documents behind fusion_blocks.jsonl: ids from dist_align_fusellm.jsonl, the target's top-k
    /// sliced back out of the blocks, the aligned lists recomputed here (neox soft/current, qwen2 hard/current) and the
    /// per-document fp16 CEs solved from the block means.
    /// </summary>
    internal static List<FusionRow> Documents(List<JsonObject> blocks)
    {
        var order = new List<string>();
        foreach (var b in blocks)
            foreach (var d in b["documents"]!.AsArray())
                if (!order.Contains(d![0]!.GetValue<string>())) order.Add(d[0]!.GetValue<string>());
        var lines = FusionFixtures.Lines("dist_align_fusellm.jsonl").ToList();
        var neoxMap = TestVocabularies.NeoxToLlamaMinEd;
        var metrics = SolveMetrics(blocks, order);
        var rows = new List<FusionRow>();
        for (int di = 0; di < order.Count; di++)
        {
            string name = order[di];
            var neox = lines.Single(l => l["snippet"]!.GetValue<string>() == name && l["blending"]!.GetValue<string>() == "neox");
            var qwen = lines.Single(l => l["snippet"]!.GetValue<string>() == name && l["blending"]!.GetValue<string>() == "qwen2");
            var ids = FusionFixtures.Ints(neox["base_ids"]);
            var topIds = new int[ids.Length][];
            var topLogits = new float[ids.Length][];
            foreach (var b in blocks)
            {
                foreach (var d in b["documents"]!.AsArray())
                {
                    if (d![0]!.GetValue<string>() != name) continue;
                    int start = d[1]!.GetValue<int>(), end = d[2]!.GetValue<int>(), off = d[3]!.GetValue<int>();
                    var bi = FusionFixtures.IntRows(b["per_step_indices"]);
                    var bl = FusionFixtures.FloatRows(b["per_step_logits"]);
                    for (int t = start; t < end; t++) { topIds[t] = bi[off + t - start]; topLogits[t] = bl[off + t - start]; }
                }
            }
            rows.Add(new FusionRow
            {
                InputIds = ids,
                Labels = ids,
                Target = SparseRows.Dense(topIds.SelectMany(r => r).ToArray(), topLogits.SelectMany(r => r).ToArray(), 10),
                Sources = [Align(neox, TestVocabularies.Neox, neoxMap, AlignmentMethod.FuseLlmSoft), Align(qwen, TestVocabularies.Qwen2, null, AlignmentMethod.FuseLlmHard)],
                Metrics = metrics[name],
                Segments = [new RowSegment(di, 0, ids.Length, 0)],
            });
        }
        return rows;
    }

    private static SparseRows Align(JsonObject line, TokenVocabulary src, VocabMap? map, AlignmentMethod method)
    {
        var bp = FusionFixtures.Strings(line["base_pieces"]);
        var sp = FusionFixtures.Strings(line["blending_pieces"]);
        var dtw = TokenDtw.Align(sp, bp, DtwVariant.FuseLlm, src.Marker, "▁");
        var aligner = new DistributionAligner(TestVocabularies.Llama2, src, map, new DistributionAlignerOptions { Method = method, Fallback = FallbackTarget.Current });
        return aligner.Align(DistributionAlignerTests.Input(line, bp, sp, dtw)).Lists;
    }

    /// <summary>Per document [ref, aligned_0, aligned_1] fp16 CEs such that the packed block means come out exactly.</summary>
    private static Dictionary<string, double[]> SolveMetrics(List<JsonObject> blocks, List<string> order)
    {
        string[] keys = ["metric_ce", "metric_ce_aligned_0", "metric_ce_aligned_1"];
        var known = new Dictionary<string, double[]>();
        for (int pass = 0; pass < 4 && known.Count < order.Count; pass++)
        {
            foreach (var b in blocks)
            {
                var segs = b["documents"]!.AsArray().Select(d => (Name: d![0]!.GetValue<string>(), Len: d[2]!.GetValue<int>() - d[1]!.GetValue<int>())).ToList();
                var unknown = segs.Where(s => !known.ContainsKey(s.Name)).ToList();
                if (unknown.Count != 1) continue;
                int n = segs.Sum(s => s.Len);
                var values = new double[3];
                for (int c = 0; c < 3; c++)
                {
                    double total = b[keys[c]]!.GetValue<double>() * n - segs.Where(s => known.ContainsKey(s.Name)).Sum(s => known[s.Name][c] * s.Len);
                    values[c] = (double)(Half)(total / unknown[0].Len);
                }
                known[unknown[0].Name] = values;
            }
        }
        Assert.Equal(order.Count, known.Count);
        return known;
    }

    private static void AssertLists(JsonNode? ids, JsonNode? values, SparseRows got)
    {
        var wi = FusionFixtures.IntRows(ids);
        var wv = FusionFixtures.FloatRows(values);
        Assert.Equal(wi.Length, got.Positions);
        for (int t = 0; t < wi.Length; t++)
        {
            Assert.True(wi[t].SequenceEqual(got.IdsAt(t).ToArray()), $"position {t}: ids differ");
            Assert.True(wv[t].SequenceEqual(got.ValuesAt(t).ToArray()), $"position {t}: values differ");
        }
    }

    private static void AssertDistribution(JsonNode? expected, SparseRows got, int t)
    {
        var want = expected!.AsArray().Select(e => (e![0]!.GetValue<int>(), e[1]!.GetValue<double>())).OrderBy(e => e.Item1).ToList();
        var ids = got.IdsAt(t).ToArray();
        var vals = got.ValuesAt(t).ToArray();
        var have = ids.Zip(vals, (i, v) => (i, (double)v)).OrderBy(e => e.i).ToList();
        Assert.True(want.SequenceEqual(have), $"position {t}: expected {string.Join(" ", want)} got {string.Join(" ", have)}");
    }
}
