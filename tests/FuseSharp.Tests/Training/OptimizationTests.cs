using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>Schedules, clipping, arenas, the log and the whole objective (finite differences through a model and two micro-batches).</summary>
public class OptimizationTests
{
    // transformers tests/optimization/test_optimization.py: lr 10, 2 warmup steps of 10 (values given to 2 decimals, compared within 1e-2 as there).
    [Theory]
    [InlineData(ScheduleKind.Constant, new[] { 0.0, 5.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0 })]
    [InlineData(ScheduleKind.Linear, new[] { 0.0, 5.0, 10.0, 8.75, 7.5, 6.25, 5.0, 3.75, 2.5, 1.25 })]
    [InlineData(ScheduleKind.Cosine, new[] { 0.0, 5.0, 10.0, 9.61, 8.53, 6.91, 5.0, 3.08, 1.46, 0.38 })]
    public void Schedules_MatchTransformers(ScheduleKind kind, double[] expected)
    {
        var s = new LearningRateSchedule(kind, 10.0, 2, 10);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - s.LearningRate(i)) <= 1e-2, $"step {i}: {s.LearningRate(i)}");
        if (kind == ScheduleKind.Cosine) Assert.Equal(10.0 * 0.5 * (1 + Math.Cos(Math.PI / 8)), s.LearningRate(3), 12);
        Assert.Equal(kind == ScheduleKind.Constant ? 10.0 : 0.0, s.LearningRate(10), 12);
        Assert.Equal(10.0, new LearningRateSchedule(kind, 10.0, 0, 10).LearningRate(0), 12); // no warmup: full rate at once
    }

    [Fact]
    public void Warmup_FromRatio_RoundsUp_AndStepsWin()
    {
        Assert.Equal(8, LearningRateSchedule.WarmupFrom(1000, 0.008, null));
        Assert.Equal(66, LearningRateSchedule.WarmupFrom(2200, 0.03, null));
        Assert.Equal(1, LearningRateSchedule.WarmupFrom(10, 0.01, null));
        Assert.Equal(5, LearningRateSchedule.WarmupFrom(10, 0.5, 5));
        Assert.Throws<TrainingException>(() => LearningRateSchedule.WarmupFrom(10, 1.5, null));
    }

    [Fact]
    public void Clipping_ScalesByMaxNormOverNorm_AndReportsTheNormBefore()
    {
        using var g = TensorArena.Create([("a", new Shape(1)), ("b", new Shape(1))]);
        g.Span("a")[0] = 3;
        g.Span("b")[0] = 4;
        Assert.Equal(5.0, GradientClipping.ClipByGlobalNorm(g, 1.0), 12);
        Assert.Equal(3f / (5f + 1e-6f), g.Span("a")[0]);
        Assert.Equal(4f / (5f + 1e-6f), g.Span("b")[0]);
        g.Span("a")[0] = 0.3f;
        g.Span("b")[0] = 0.4f;
        Assert.Equal(0.5, GradientClipping.ClipByGlobalNorm(g, 1.0), 6); // below the limit: untouched
        Assert.Equal(0.3f, g.Span("a")[0]);
        Assert.Equal(0.5, GradientClipping.ClipByGlobalNorm(g, 0), 6);   // 0 disables
        g.Span("a")[0] = float.NaN;
        Assert.True(double.IsNaN(GradientClipping.ClipByGlobalNorm(g, 1.0)));
    }

    [Fact]
    public void Arena_ViewsAreAlignedNamedAndClearedAtOnce()
    {
        using var a = TensorArena.Create([("w", new Shape(3, 5)), ("b", new Shape(7)), ("e", new Shape(0))]);
        Assert.Equal([0L, 16L, 32L], a.Entries.Select(e => e.Offset));
        a.Span("w").Fill(2f);
        a.Span("b").Fill(3f);
        using (var view = a.View("w")) Assert.Equal(new Shape(3, 5), view.Shape);
        using var g = a.CreateLike();
        Assert.True(a.HasSameLayout(g));
        g.CopyFrom(a);
        Assert.Equal(3f, g.Span("b")[6]);
        g.Clear();
        Assert.All(g.Span("w").ToArray(), v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentException>(() => TensorArena.Create([("x", new Shape(1)), ("x", new Shape(2))]));
        Assert.Throws<KeyNotFoundException>(() => a.Span("nope"));
    }

    [Fact]
    public void Log_ResumeDropsLinesPastTheCheckpoint()
    {
        using var dir = new TempDir();
        using (var log = TrainingLog.Open(dir.Path, 0))
        {
            for (int s = 1; s <= 5; s++) log.Append(new StepRecord(s, s / 10.0, 5 - s * 0.1, 5 - s * 0.1, null, 1e-3, 1.0, 10, 100, s));
            log.AppendEval(2, 4.5);
        }
        using var resumed = TrainingLog.Open(dir.Path, 3);
        Assert.Equal([1L, 2L, 3L], resumed.Records.Select(r => r.Step));
        Assert.Equal(4.5, resumed.Records[1].EvalLoss);
        Assert.Equal(4.9, resumed.Records[0].Loss, 12);
    }

    [Fact]
    public void LossCurve_IsAnSvgWithBothLines()
    {
        var records = Enumerable.Range(1, 3000).Select(s => new StepRecord(s, 0, 3 + Math.Sin(s), 3, null, 0, 1, 0, 0, 0, s % 1000 == 0 ? 2.5 : null)).ToList();
        var svg = LossCurve.Render(records);
        Assert.StartsWith("<svg", svg, StringComparison.Ordinal);
        Assert.Equal(3, svg.Split("<polyline").Length - 1); // raw, smoothed, held-out
        Assert.Equal(3, svg.Split("<circle").Length - 2);   // three held-out points (plus the legend's)
        Assert.EndsWith("</svg>\n", svg, StringComparison.Ordinal);
        Assert.Contains("no steps yet", LossCurve.Render([]), StringComparison.Ordinal);
        Assert.Equal([0.0, 0.5, 1.0], LossCurve.Ticks(0, 1, 2));
    }

    /// <summary>
    /// The λ-mixture through a model and two micro-batches of different lengths, with −100 labels, padding, teacher
    /// distributions on some positions: every parameter gradient the trainer accumulates equals the finite
    /// difference of the step loss it reports (float32 forward, so a loose tolerance on sampled coordinates).
    /// </summary>
    [Theory]
    [InlineData(LossReduction.TokenMean, FusionLossMask.AllTokens, FusionLossKind.CrossEntropy)]
    [InlineData(LossReduction.MicroBatchMean, FusionLossMask.SupervisedTokens, FusionLossKind.KlDivergence)]
    public void Objective_AcrossMicroBatches_GradientIsTheFiniteDifferenceOfTheStepLoss(LossReduction reduction, FusionLossMask mask, FusionLossKind kind)
    {
        using var dir = new TempDir();
        TinyLm.CreateFolder(dir.Path, 20, 8, 16, seed: 5);
        using var model = TinyLm.Load(dir.Path);
        SparseDistributions Teacher(int n, int seed)
        {
            var rng = new Random(seed);
            return SparseDistributions.FromLists(Enumerable.Range(0, n).Select(t =>
                (IReadOnlyList<(int, float)>)(t % 3 == 2 ? [] : [(rng.Next(20), 0.6f), ((t + 7) % 20, 0.4f)])).ToList());
        }
        var b1 = MicroBatch.Collate([new TrainingExample([1, 2, 3, 4, 5, 6], [1, 2, -100, 4, 5, 6], Teacher(6, 1)), new TrainingExample([7, 8, 9], [7, 8, 9], Teacher(3, 2))], 0);
        var b2 = MicroBatch.Collate([new TrainingExample([3, 3, 4, 19, 18], [-100, -100, 4, 19, 18], Teacher(5, 3))], 0);
        var objective = new TrainingObjective(new ObjectiveOptions(0.7, kind, mask, reduction));
        double StepLoss()
        {
            var losses = objective.Begin([b1, b2]);
            model.Run(b1, losses[0], backward: false);
            model.Run(b2, losses[1], backward: false);
            return objective.Summarize(losses).Total;
        }
        model.Gradients.Clear();
        var ls = objective.Begin([b1, b2]);
        model.Run(b1, ls[0], backward: true);
        model.Run(b2, ls[1], backward: true);
        foreach (var entry in model.Parameters.Entries)
        {
            var p = model.Parameters.Span(entry.Name);
            var g = model.Gradients.Span(entry.Name).ToArray();
            var rng = new Random(entry.Name.Length);
            for (int n = 0; n < 12; n++)
            {
                int i = rng.Next(p.Length);
                float orig = p[i], h = 1e-2f * Math.Max(1f, Math.Abs(orig));
                p[i] = orig + h;
                double up = StepLoss();
                p[i] = orig - h;
                double down = StepLoss();
                p[i] = orig;
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(fd - g[i]) <= 2e-3 + 2e-2 * Math.Abs(fd), $"{entry.Name}[{i}]: gradient {g[i]}, finite difference {fd}");
            }
        }
    }
}
