using FuseSharp.Diagnostics;
using FuseSharp.IO;
using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>The training loop end to end on <see cref="TinyLm"/>: learning, exact resume, divergence, failed checkpoints, bad input.</summary>
[Collection(ParallelismCollection.Name)]
public class TrainerTests
{
    private const int Vocab = 102, Hidden = 16;

    private static ITrainingDataset Data(TempDir dir, int blockSize = 16, string? text = null)
    {
        var path = dir.File("train.txt");
        File.WriteAllText(path, text ?? string.Concat(Enumerable.Repeat("the cat sat on the mat. the dog sat on the log. ", 12)));
        return TrainingData.Load(path, new DataOptions(DataFormat.Text, blockSize, Vocab), new TestTokenizer());
    }

    private static string Model(TempDir dir, int maxPositions = 64)
    {
        var folder = Path.Combine(dir.Path, "init");
        if (!Directory.Exists(folder)) TinyLm.CreateFolder(folder, Vocab, Hidden, maxPositions, seed: 7);
        return folder;
    }

    private static TrainingOptions Options(long steps, long saveSteps = 0) => new()
    {
        MaxSteps = steps,
        BatchSize = 3,
        GradientAccumulation = 2,
        LearningRate = 3e-2,
        Schedule = ScheduleKind.Cosine,
        WarmupRatio = 0.1,
        Adam = new AdamWOptions(0.9, 0.95, 1e-8, 0.1),
        SaveSteps = saveSteps,
        Seed = 3,
    };

    /// <summary>Cancels after a given number of optimizer steps (the trainer checks between steps).</summary>
    private sealed class StopAfter(int steps, CancellationTokenSource cts) : IProgressReporter, IProgressTask
    {
        private long _done;

        public IProgressTask Start(string description, long total, ProgressUnit unit = ProgressUnit.Items) => this;

        public void Message(string text) { }

        public void Advance(long amount = 1)
        {
            _done += amount;
            if (_done >= steps) cts.Cancel();
        }

        public void SetCompleted(long completed) => _done = completed;

        public void SetTotal(long total) { }

        public void Dispose() { }
    }

    [Fact]
    public void Training_LowersTheLoss_AndWritesAModelFolderWithLogAndCurve()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var outDir = Path.Combine(dir.Path, "out");
        var result = new Trainer(Options(40, saveSteps: 20), data, outDir).Run(Model(dir), TinyLm.Load);
        Assert.Equal(40, result.Steps);
        var log = TrainingLog.Open(outDir, long.MaxValue);
        var records = log.Records;
        log.Dispose();
        Assert.Equal(40, records.Count);
        Assert.True(records[^1].Loss < records[0].Loss * 0.6, $"loss {records[0].Loss} -> {records[^1].Loss}");
        Assert.Equal(0.0, records[0].LearningRate); // warmup starts at 0, as transformers' schedules do
        Assert.All(records, r => Assert.True(r.GradNorm > 0 && r.Tokens == 6 * 16));
        // Checkpoints at 20 and 40, the final folder loads, and carries the source's tokenizer files.
        Assert.Equal([20L, 40L], new CheckpointManager(outDir).List().Select(c => c.Step));
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer_config.json")));
        Assert.Contains("<polyline", File.ReadAllText(Path.Combine(outDir, LossCurve.FileName)), StringComparison.Ordinal);
        using var final = TinyLm.Load(outDir);
        using var ck = TinyLm.Load(Path.Combine(outDir, "checkpoint-40"));
        Assert.True(final.Parameters.Span("head.weight").SequenceEqual(ck.Parameters.Span("head.weight")));
    }

    [Theory]
    [InlineData(10)] // interrupted right after the checkpoint
    [InlineData(13)] // interrupted between checkpoints: steps 11-13 are redone
    public void Resume_ContinuesBitForBit(int interruptAfter)
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var model = Model(dir);
        var straight = Path.Combine(dir.Path, "straight");
        new Trainer(Options(20, saveSteps: 10), data, straight).Run(model, TinyLm.Load);

        var resumed = Path.Combine(dir.Path, "resumed");
        using (var cts = new CancellationTokenSource())
        {
            Assert.Throws<OperationCanceledException>(() =>
                new Trainer(Options(20, saveSteps: 10), data, resumed, new StopAfter(interruptAfter, cts)).Run(model, TinyLm.Load, cancellation: cts.Token));
        }
        Assert.Equal([10L], new CheckpointManager(resumed).List().Select(c => c.Step));
        var result = new Trainer(Options(20, saveSteps: 10), data, resumed).Run(model, TinyLm.Load, resume: true);
        Assert.Equal(10, result.ResumedFrom);

        // The logs agree line by line on every value but the timings.
        static List<string> Losses(string dir) => File.ReadLines(Path.Combine(dir, TrainingLog.FileName))
            .Select(l => StepRecord.Parse(l)!).Select(r => $"{r.Step} {r.Loss:R} {r.ClmLoss:R} {r.LearningRate:R} {r.GradNorm:R} {r.Epoch:R}").ToList();
        Assert.Equal(Losses(straight), Losses(resumed));
        // Weights and optimizer moments are identical bit for bit.
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "checkpoint-20", CheckpointManager.OptimizerFileName)),
            File.ReadAllBytes(Path.Combine(resumed, "checkpoint-20", CheckpointManager.OptimizerFileName)));
    }

    [Fact]
    public void Training_DoesNotDependOnTheThreadCount()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        int saved = Parallelism.MaxThreads;
        try
        {
            Parallelism.MaxThreads = 1;
            new Trainer(Options(4), data, Path.Combine(dir.Path, "one")).Run(Model(dir), TinyLm.Load);
            Parallelism.MaxThreads = 4;
            new Trainer(Options(4), data, Path.Combine(dir.Path, "four")).Run(Model(dir), TinyLm.Load);
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir.Path, "one", "model.safetensors")), File.ReadAllBytes(Path.Combine(dir.Path, "four", "model.safetensors")));
    }

    [Fact]
    public void Resume_WithOtherOptions_IsRefused()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var outDir = Path.Combine(dir.Path, "out");
        new Trainer(Options(4, saveSteps: 2), data, outDir).Run(Model(dir), TinyLm.Load);
        var e = Assert.Throws<TrainingException>(() => new Trainer(Options(4, saveSteps: 2) with { LearningRate = 1e-3 }, data, outDir).Run(Model(dir), TinyLm.Load, resume: true));
        Assert.Contains("lr", e.Message, StringComparison.Ordinal);
        // A fresh run into the same folder is refused too (it would mix two runs).
        var e2 = Assert.Throws<TrainingException>(() => new Trainer(Options(4), data, outDir).Run(Model(dir), TinyLm.Load));
        Assert.Contains("--resume", e2.Hint, StringComparison.Ordinal);
        // And --resume without a checkpoint says so.
        var e3 = Assert.Throws<TrainingException>(() => new Trainer(Options(4), data, Path.Combine(dir.Path, "empty")).Run(Model(dir), TinyLm.Load, resume: true));
        Assert.Contains("no checkpoint", e3.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NaNLoss_StopsNamingTheStep_AndKeepsTheLastGoodCheckpoint()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var outDir = Path.Combine(dir.Path, "out");
        TinyLm? live = null;
        ITrainableModel Load(string f)
        {
            live = TinyLm.Load(f);
            live.PoisonCall = 2 * 6 + 1; // first micro-batch of step 7 (two micro-batches per step)
            return live;
        }
        var e = Assert.Throws<TrainingDivergedException>(() => new Trainer(Options(10, saveSteps: 5), data, outDir).Run(Model(dir), Load));
        Assert.Equal(7, e.Step);
        Assert.Contains("step 7", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("checkpoint-5", e.LastCheckpoint, StringComparison.Ordinal);
        Assert.Equal([5L], new CheckpointManager(outDir).List().Select(c => c.Step));
        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors"))); // no final model from a diverged run
        using var ck = TinyLm.Load(e.LastCheckpoint!);
        Assert.All(ck.Parameters.Entries, en => Assert.True(ck.Parameters.Span(en.Name).ToArray().All(float.IsFinite)));
    }

    [Fact]
    public void FailedCheckpoint_LeavesThePreviousOneIntact_AndResumeWorks()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var outDir = Path.Combine(dir.Path, "out");
        var trainer = new Trainer(Options(6, saveSteps: 2), data, outDir);
        int saves = 0;
        trainer.Checkpoints.BeforeCommit = _ =>
        {
            if (++saves == 2) throw new IOException("No space left on device");
        };
        var e = Assert.Throws<TrainingException>(() => trainer.Run(Model(dir), TinyLm.Load));
        Assert.Contains("checkpoint at step 4", e.Message, StringComparison.Ordinal);
        Assert.Contains("checkpoint-2", e.Message, StringComparison.Ordinal);
        Assert.Contains("free disk space", e.Hint, StringComparison.Ordinal);
        Assert.Equal([2L], new CheckpointManager(outDir).List().Select(c => c.Step));
        Assert.Empty(Directory.EnumerateDirectories(outDir, ".checkpoint-*")); // no half-written folder left behind
        var result = new Trainer(Options(6, saveSteps: 2), data, outDir).Run(Model(dir), TinyLm.Load, resume: true);
        Assert.Equal(6, result.Steps);
        Assert.Equal(2, result.ResumedFrom);
    }

    [Fact]
    public void BlockSizeAboveMaxPositions_IsRejectedBeforeTraining()
    {
        using var dir = new TempDir();
        var data = Data(dir, blockSize: 32);
        var e = Assert.Throws<TrainingException>(() => new Trainer(Options(2), data, Path.Combine(dir.Path, "out")).Run(Model(dir, maxPositions: 24), TinyLm.Load));
        Assert.Contains("24 positions", e.Message, StringComparison.Ordinal);
        Assert.Contains("--block-size", e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void GradientAccumulation_EqualsTheLargerBatch_UnderTokenMean()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var a = new Trainer(Options(3) with { BatchSize = 4, GradientAccumulation = 1, Shuffle = false }, data, Path.Combine(dir.Path, "a")).Run(Model(dir), TinyLm.Load);
        var b = new Trainer(Options(3) with { BatchSize = 2, GradientAccumulation = 2, Shuffle = false }, data, Path.Combine(dir.Path, "b")).Run(Model(dir), TinyLm.Load);
        Assert.True(Math.Abs(a.FinalLoss - b.FinalLoss) < 1e-5, $"{a.FinalLoss} vs {b.FinalLoss}");
        using var ma = TinyLm.Load(Path.Combine(dir.Path, "a"));
        using var mb = TinyLm.Load(Path.Combine(dir.Path, "b"));
        var wa = ma.Parameters.Span("head.weight");
        var wb = mb.Parameters.Span("head.weight");
        for (int i = 0; i < wa.Length; i++) Assert.True(Math.Abs(wa[i] - wb[i]) < 1e-5);
    }

    [Fact]
    public void EvaluationData_IsScoredAndPlotted()
    {
        using var dir = new TempDir();
        var data = Data(dir);
        var eval = Data(dir, text: string.Concat(Enumerable.Repeat("the cat sat on the log. ", 6)));
        var outDir = Path.Combine(dir.Path, "out");
        var result = new Trainer(Options(8) with { EvalSteps = 4 }, data, outDir, evalData: eval).Run(Model(dir), TinyLm.Load);
        Assert.NotNull(result.EvalLoss);
        Assert.True(result.EvalLoss!.Value.ClmPositions == eval.Count * 15);
        var log = TrainingLog.Open(outDir, long.MaxValue);
        Assert.Equal(2, log.Records.Count(r => r.EvalLoss is not null));
        log.Dispose();
        Assert.Contains("held-out loss", File.ReadAllText(Path.Combine(outDir, LossCurve.FileName)), StringComparison.Ordinal);
    }

    [Fact]
    public void FinalModel_IsSavedInTheRequestedDtype()
    {
        using var dir = new TempDir();
        var outDir = Path.Combine(dir.Path, "out");
        new Trainer(Options(2) with { SaveDType = DType.BF16 }, Data(dir), outDir).Run(Model(dir), TinyLm.Load);
        using var f = SafetensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        Assert.All(f.Tensors, t => Assert.Equal(DType.BF16, t.DType));
        Assert.Equal("bfloat16", ModelConfig.Load(Path.Combine(outDir, "config.json")).TorchDtype);
        using var ck = SafetensorsFile.Open(Path.Combine(outDir, "checkpoint-2", "model.safetensors"));
        Assert.All(ck.Tensors, t => Assert.Equal(DType.F32, t.DType)); // checkpoints stay exact
    }
}
