using System.Text.Json.Nodes;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tests.Training;
using FuseSharp.Training;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary><c>fuse train</c>: fused rows as the trainer's teacher, and the λ-mixture training through the Trainer.</summary>
public sealed class FusionTrainingTests : ScratchFolderTest
{
    /// <summary>Target and one copied "source" (same toy model), packed into 16-position blocks and fused (MinCE).</summary>
    private (string Packed, string Fused, int Vocab) BuildFusedStore(FusionRule rule = FusionRule.MinCe)
    {
        var tok = new ToyTokenizer();
        var corpus = Scratch("corpus.jsonl");
        File.WriteAllLines(corpus, Enumerable.Range(0, 10).Select(i => new JsonObject { ["text"] = $"doc {i}: the cat sat on {new string('m', i % 4)} mat" }.ToJsonString()));
        var options = new RepresentOptions { K = 4, MaxLength = 64, RowsPerPart = 4 };
        RepresentStage.Run(corpus, tok, new ToyScorer(tok.VocabSize), Scratch("rep-t"), options);
        RepresentStage.Run(corpus, tok, new ToyScorer(tok.VocabSize), Scratch("rep-s"), options);
        var side = new AlignTokenizer(TokenVocabulary.FromTokenizer(tok, "▁"));
        AlignStage.Run(StoreReader.Open(Scratch("rep-t")), StoreReader.Open(Scratch("rep-s")), side, side, null, Scratch("aligned"), new AlignStageOptions { Copy = true });
        var data = FusionDataset.Join(StoreReader.Open(Scratch("rep-t")), [StoreReader.Open(Scratch("aligned"))]);
        PackStage.Run(data, Scratch("packed"), new PackingOptions { BlockSize = 16, BatchDocuments = 0 });
        FuseStage.Run(FusionDataset.FromDataset(StoreReader.Open(Scratch("packed"))), Scratch("fused"), new FusionOptions { Rule = rule }, ShardSpec.All);
        return (Scratch("packed"), Scratch("fused"), tok.VocabSize);
    }

    [Fact]
    public void FusedStoreRowsBecomeExamplesWithTheirTeacher()
    {
        var (packed, fused, _) = BuildFusedStore();
        var store = StoreReader.Open(fused);
        var data = FusionTrainingDataset.FromFusedStore(store);
        var rows = store.ReadRows().ToList();
        Assert.Equal(rows.Count, data.Count);
        Assert.True(data.HasTeacher);
        for (int i = 0; i < rows.Count; i++)
        {
            var e = data[i];
            Assert.Equal(rows[i].InputIds, e.InputIds);
            Assert.Equal(rows[i].Labels ?? rows[i].InputIds, e.Labels);
            var d = rows[i].Lists[0].Rows;
            Assert.Equal(d.Offsets, e.Targets!.Offsets);
            Assert.Equal(d.Ids, e.Targets.Ids);
            Assert.Equal(d.Values, e.Targets.Probabilities);
            for (int t = 0; t < e.Length; t++)
            {
                // Every real position has a teacher (FuseLLM's mask is the attention mask) summing to 1 (bf16 values).
                Assert.True(e.Targets.IdsAt(t).Length > 0);
                Assert.InRange(e.Targets.ProbabilitiesAt(t).ToArray().Sum(), 0.97f, 1.03f);
            }
        }
        // Fusing while loading gives the same teacher as the fused store.
        var onTheFly = FusionTrainingDataset.Fuse(FusionDataset.FromDataset(StoreReader.Open(packed)), new FusionOptions());
        Assert.Equal(data.Count, onTheFly.Count);
        for (int i = 0; i < data.Count; i++)
        {
            Assert.Equal(data[i].Targets!.Ids, onTheFly[i].Targets!.Ids);
            Assert.Equal(data[i].Targets!.Probabilities, onTheFly[i].Targets!.Probabilities);
        }
        // The causal-LM baseline sees exactly the same sequences, without teacher.
        var clm = FusionTrainingDataset.LanguageModeling(FusionDataset.FromDataset(StoreReader.Open(packed)));
        Assert.False(clm.HasTeacher);
        Assert.Equal(data.TokenCount, clm.TokenCount);
        Assert.Equal(data[3].InputIds, clm[3].InputIds);
    }

    [Fact]
    public void TrainingFitsTheTeacherWithTheLambdaMixtureAndResumes()
    {
        var (_, fused, vocab) = BuildFusedStore();
        var model = Scratch("tiny");
        TinyLm.CreateFolder(model, vocab, 16, 64, seed: 3);
        var data = FusionTrainingDataset.FromFusedStore(StoreReader.Open(fused));
        var options = TrainStage.Defaults(FusionRecipeKind.FuseLlm) with { LearningRate = 3e-2, MaxSteps = 12, Epochs = null, BatchSize = 2, SaveSteps = 6, WarmupRatio = 0 };
        var full = TrainStage.Run(model, data, Scratch("full"), options, TinyLm.Load);
        Assert.Equal(12, full.Steps);
        var log = ReadLog(Scratch("full"));
        Assert.Equal(12, log.Count);
        // λ = 0.9 of the spec: total = 0.9·CLM + 0.1·fusion at every step, and the fusion CE falls.
        foreach (var r in log) Assert.Equal(0.9 * r.ClmLoss + 0.1 * r.FusionLoss!.Value, r.Loss, 9);
        Assert.True(log[^1].FusionLoss < log[0].FusionLoss - 0.2, $"fusion CE {log[0].FusionLoss} -> {log[^1].FusionLoss}");

        // Interrupted after the first checkpoint and resumed: the same trajectory.
        using (var cts = new CancellationTokenSource())
        {
            int calls = 0;
            Assert.ThrowsAny<OperationCanceledException>(() => TrainStage.Run(model, data, Scratch("resumed"), options, f =>
            {
                var m = TinyLm.Load(f);
                return new CallbackModel(m, () => { if (++calls == 8) cts.Cancel(); });
            }, cancel: cts.Token));
        }
        TrainStage.Run(model, data, Scratch("resumed"), options, TinyLm.Load, resume: true);
        var resumed = ReadLog(Scratch("resumed"));
        Assert.Equal(log.Select(r => r.Loss), resumed.Select(r => r.Loss));

        // Continuing from a training's output folder (its log and loss curve are not copied over the new run's).
        var again = TrainStage.Run(Scratch("full"), data, Scratch("again"), options with { MaxSteps = 2 }, TinyLm.Load);
        Assert.Equal(2, again.Steps);
        Assert.Equal(2, ReadLog(Scratch("again")).Count);

        // The CLM-only baseline on the same rows: no fusion term at all.
        TrainStage.Run(model, data.WithoutTeacher(), Scratch("clm"), options with { Objective = options.Objective with { LmLossWeight = 1 } }, TinyLm.Load);
        Assert.All(ReadLog(Scratch("clm")), r => Assert.Null(r.FusionLoss));
    }

    [Fact]
    public void MismatchedDataIsRefusedWithAReason()
    {
        var (_, fused, vocab) = BuildFusedStore();
        var data = FusionTrainingDataset.FromFusedStore(StoreReader.Open(fused));
        var options = TrainStage.Defaults(FusionRecipeKind.FuseLlm) with { MaxSteps = 1, Epochs = null, BatchSize = 2 };
        var small = Scratch("small");
        TinyLm.CreateFolder(small, vocab - 50, 8, 64, seed: 1);
        var e = Assert.Throws<FusionException>(() => TrainStage.Run(small, data, Scratch("o1"), options, TinyLm.Load));
        Assert.Contains("outside the", e.Message, StringComparison.Ordinal);
        var model = Scratch("tiny");
        TinyLm.CreateFolder(model, vocab, 8, 64, seed: 1);
        e = Assert.Throws<FusionException>(() => TrainStage.Run(model, data.WithoutTeacher(), Scratch("o2"), options, TinyLm.Load));
        Assert.Contains("no teacher", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<FusionException>(() => FusionTrainingDataset.FromFusedStore(StoreReader.Open(Scratch("packed"))));
        Assert.Contains("not a fused one", e.Message, StringComparison.Ordinal);
    }

    private static List<StepRecord> ReadLog(string folder) =>
        File.ReadLines(Path.Combine(folder, TrainingLog.FileName)).Select(StepRecord.Parse).OfType<StepRecord>().ToList();
}
