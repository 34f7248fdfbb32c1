using System.Text.Json.Nodes;
using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>
/// The λ-mixture <c>0.9·CLM + 0.1·fusion CE</c> against FuseLLM's own <c>DistillTrainer.compute_loss</c> on packed blocks
/// (fixtures/fusion/fusion_blocks.jsonl, MinCE): the teacher of every position is rebuilt sparse from the block's
/// columns (as the reference collator does densely), the student logits are the fixture's, and the three losses
/// must match the reference within 1e-5 relative.
/// </summary>
public class FusionLossFixtureTests
{
    private static IEnumerable<JsonObject> Blocks() =>
        File.ReadLines(TestPaths.Fixture("fusion", "fusion_blocks.jsonl")).Select(l => (JsonObject)JsonNode.Parse(l)!);

    public static TheoryData<int> BlockIds => new() { 0, 1, 2, 3, 4, 5, 6, 7 };

    /// <summary>
    /// The collator's teacher at one position: <c>softmax(bf16(values) / T)</c> over the listed ids, rounded to bf16
    /// (softmax over the stored top-k only; a one-hot entry [1.0] becomes probability 1).
    /// </summary>
    private static List<(int Id, float P)> Teacher(JsonArray ids, JsonArray values)
    {
        var z = values.Select(v => (double)BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle((float)v!.GetValue<double>()))).ToArray();
        double max = z.Max(), sum = z.Sum(x => Math.Exp(x - max));
        return ids.Select((id, i) => (id!.GetValue<int>(), BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle((float)(Math.Exp(z[i] - max) / sum))))).ToList();
    }

    [Theory]
    [MemberData(nameof(BlockIds))]
    public void MinCeBlock_LossPartsMatchTheReference(int blockId)
    {
        var block = Blocks().Single(b => b["block"]!.GetValue<int>() == blockId);
        int length = block["length"]!.GetValue<int>();
        int choice = block["fusion"]!["minCE_choice"]!.GetValue<int>();
        string logitsCol = choice == 0 ? "per_step_logits" : $"per_step_aligned_logits_{choice - 1}";
        string idsCol = choice == 0 ? "per_step_indices" : $"per_step_aligned_indices_{choice - 1}";
        var dists = new List<IReadOnlyList<(int, float)>>();
        for (int j = 0; j < length; j++)
        {
            var ids = block[idsCol]![j]!.AsArray();
            // An empty aligned list falls back to the target's own distribution (DataCollatorForDistill).
            dists.Add(ids.Count > 0 ? Teacher(ids, block[logitsCol]![j]!.AsArray()) : Teacher(block["per_step_indices"]![j]!.AsArray(), block["per_step_logits"]![j]!.AsArray()));
        }
        // The rebuilt teachers are the reference's bf16 values wherever the fixture lists them.
        foreach (var pos in block["positions"]!.AsArray())
        {
            int t = pos!["t"]!.GetValue<int>();
            if (t >= length) continue;
            var want = pos["minCE_fused"]!.AsArray().Select(e => (e![0]!.GetValue<int>(), (float)e[1]!.GetValue<double>())).OrderBy(e => e.Item1).ToList();
            Assert.Equal(want, dists[t].OrderBy(e => e.Item1).ToList());
        }
        var inputIds = block["input_ids"]!.AsArray().Take(length).Select(x => x!.GetValue<int>()).ToArray();
        var labels = block["labels"]!.AsArray().Take(length).Select(x => x!.GetValue<int>()).ToArray();
        var example = new TrainingExample(inputIds, labels, SparseDistributions.FromLists(dists));
        var student = block["student_logits"]!.AsObject();
        int v = student["vocab_size"]!.GetValue<int>();
        var logits = new float[length * v];
        var overrides = student["overrides"]!.AsArray();
        for (int t = 0; t < length; t++)
            foreach (var o in overrides[t]!.AsArray())
                logits[t * v + o![0]!.GetValue<int>()] = (float)o[1]!.GetValue<double>();
        var objective = new TrainingObjective(new ObjectiveOptions(LmLossWeight: 0.9, FusionMask: FusionLossMask.AllTokens));
        var loss = objective.Begin([MicroBatch.Collate([example], 0)])[0];
        loss.Apply(0, length, logits, v);
        var parts = objective.Summarize([loss]);
        var want2 = block["loss"]!["minCE"]!;
        void Near(string what, double got, string key)
        {
            double w = want2[key]!.GetValue<double>();
            Assert.True(Math.Abs(got - w) <= 1e-5 * Math.Abs(w), $"block {blockId} {what}: {got:R} vs {w:R}");
        }
        Near("clm", parts.Clm, "clm_fp64");
        Near("fusion", parts.Fusion, "fusion_ce_fp64");
        Near("total", parts.Total, "total_fp64");
        Assert.Equal(length, parts.FusionPositions); // FuseLLM's mask: every real position, the last included
        Assert.Equal(length - 1, parts.ClmPositions);
    }

    [Fact]
    public void FusionMask_SupervisedTokens_CountsOnlyPositionsBeforeALabel()
    {
        int[] ids = [5, 6, 7, 8, 9];
        int[] labels = [-100, -100, 7, 8, -100];
        var d = SparseDistributions.FromLists(Enumerable.Range(0, 5).Select(_ => (IReadOnlyList<(int, float)>)[(1, 1f)]).ToList());
        var batch = MicroBatch.Collate([new TrainingExample(ids, labels, d)], 0);
        Assert.Equal((2L, 2L), new TrainingObjective(new ObjectiveOptions(0.9, FusionMask: FusionLossMask.SupervisedTokens)).Count(batch));
        Assert.Equal((2L, 5L), new TrainingObjective(new ObjectiveOptions(0.9)).Count(batch));
    }
}
