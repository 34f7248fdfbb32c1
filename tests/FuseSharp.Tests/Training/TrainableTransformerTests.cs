using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tests.Models;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>
/// The engine's architectures as trainable models, against the model fixtures (an independent float64 PyTorch
/// reference): loss, every <c>grad.*</c> tensor and one end-to-end AdamW step; the training forward's logits against
/// the engine's inference forward; whole-model finite differences; gradient checkpointing; Mixtral refused.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class TrainableTransformerTests
{
    public static TheoryData<string> Dense => new()
    {
        "llama-tiny", "llama-tied-tiny", "llama-bf16-tiny", "mistral-tiny", "qwen2-tiny", "phi3-tiny", "gemma-tiny", "internlm2-tiny",
        "gpt2-tiny", "gpt_neox-tiny", "mpt-tiny",
    };

    private static (MicroBatch Batch, int B, int T) FixtureBatch(string model)
    {
        var (b, t, ids) = ModelFixtures.InputIds(model);
        var examples = Enumerable.Range(0, b).Select(r => TrainingExample.LanguageModeling(ids[(r * t)..((r + 1) * t)])).ToList();
        return (MicroBatch.Collate(examples, 0), b, t);
    }

    /// <summary>Loss of one forward/backward; the gradients are added into the model's arena.</summary>
    private static double LossAndGradients(TrainableTransformer model, MicroBatch batch, bool backward = true)
    {
        var objective = new TrainingObjective();
        var loss = objective.Begin([batch])[0];
        model.Run(batch, loss, backward);
        return objective.Summarize([loss]).Total;
    }

    private static void AssertClose(string what, ReadOnlySpan<float> got, ReadOnlySpan<float> want, double abs, double rel)
    {
        Assert.Equal(want.Length, got.Length);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double excess = Math.Abs(got[i] - want[i]) - (abs + rel * Math.Abs(want[i]));
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        Assert.True(worst < 0, worst < 0 ? "" : $"{what}[{worst}]: {got[worst]:R} vs {want[worst]:R}");
    }

    [Theory]
    [MemberData(nameof(Dense))]
    public void LossAndEveryGradient_MatchTheReference(string model)
    {
        using var m = TrainableTransformer.Load(ModelFixtures.Folder(model));
        var (batch, _, _) = FixtureBatch(model);
        double loss = LossAndGradients(m, batch);
        double golden = ModelFixtures.Case(model)["loss"]!.GetValue<double>();
        Assert.True(Math.Abs(loss - golden) <= 1e-5 + 1e-5 * golden, $"{model}: loss {loss:R} vs {golden:R}");
        var (abs, rel) = ModelFixtures.Tolerance(model, "grads");
        using var expected = SafetensorsFile.Open(Path.Combine(ModelFixtures.Folder(model), "expected.safetensors"));
        foreach (var e in m.Gradients.Entries)
        {
            var want = new float[e.Length];
            expected.ReadSingle("grad." + e.Name, want);
            AssertClose($"{model} grad.{e.Name}", m.Gradients.Span(e.Name), want, abs, rel);
        }
        Assert.Equal(expected.Tensors.Count(t => t.Name.StartsWith("grad.", StringComparison.Ordinal)), m.Gradients.Count);
    }

    [Theory]
    [MemberData(nameof(Dense))]
    public void TrainingLogits_EqualTheEngineForward(string model)
    {
        using var m = TrainableTransformer.Load(ModelFixtures.Folder(model));
        var (batch, b, t) = FixtureBatch(model);
        var logits = m.Logits(batch);
        var sink = new FullLogits();
        m.Engine.Forward(new TokenBatch(b, t, batch.InputIds), sink);
        AssertClose($"{model} logits vs engine", logits, sink.Values, 1e-6, 1e-6);
        var (abs, rel) = ModelFixtures.Tolerance(model, "logits");
        AssertClose($"{model} logits vs reference", logits, ModelFixtures.Expected(model, "logits"), abs, rel);
    }

    [Fact]
    public void OneAdamWStep_FromTheModelsOwnGradients_MatchesTorch()
    {
        const string model = "qwen2-tiny";
        using var m = TrainableTransformer.Load(ModelFixtures.Folder(model));
        var (batch, _, _) = FixtureBatch(model);
        LossAndGradients(m, batch);
        var c = ModelFixtures.Case(model)["adamw"]!.AsObject();
        var betas = c["betas"]!.AsArray();
        double lr = c["lr"]!.GetValue<double>();
        using var adam = new AdamW(m.Parameters, new AdamWOptions(betas[0]!.GetValue<double>(), betas[1]!.GetValue<double>(), c["eps"]!.GetValue<double>(),
            c["weight_decay"]!.GetValue<double>()), WeightDecayPolicy.All);
        adam.Step(m.Gradients, lr);
        using var expected = SafetensorsFile.Open(Path.Combine(ModelFixtures.Folder(model), "expected.safetensors"));
        foreach (var e in m.Parameters.Entries)
        {
            var want = new float[e.Length];
            var grad = new float[e.Length];
            expected.ReadSingle("adamw." + e.Name, want);
            expected.ReadSingle("grad." + e.Name, grad);
            var got = m.Parameters.Span(e.Name);
            for (int i = 0; i < want.Length; i++)
            {
                // The fixture's rule for an end-to-end step: 1e-6 where |g| ≥ 1e-6; where g is at noise level, the step's size lr bounds it.
                double tol = Math.Abs(grad[i]) >= 1e-6 ? 1e-6 : 1.1 * lr;
                Assert.True(Math.Abs(got[i] - want[i]) <= tol, $"adamw.{e.Name}[{i}]: {got[i]:R} vs {want[i]:R}");
            }
        }
        // The engine bound to the arena sees the step.
        var sink = new LastLogits();
        m.Engine.Forward(TokenBatch.Single(batch.InputIds[..4]), sink);
        Assert.Equal(m.Logits(MicroBatch.Collate([TrainingExample.LanguageModeling(batch.InputIds[..4])], 0)).AsSpan(3 * m.VocabSize).ToArray(), sink.Values);
    }

    [Theory]
    [InlineData("llama-tiny")]
    [InlineData("gpt_neox-tiny")]
    public void WholeModelGradient_AgreesWithFiniteDifferences(string model)
    {
        // The directional derivative along the gradient, (L(θ + εu) − L(θ − εu)) / 2ε with u = g/|g|, must be |g|:
        // one well-conditioned float32 check of every parameter at once.
        using var m = TrainableTransformer.Load(ModelFixtures.Folder(model));
        var (batch, _, _) = FixtureBatch(model);
        LossAndGradients(m, batch);
        var theta = new float[m.Parameters.TotalLength];
        var g = new float[m.Gradients.TotalLength];
        unsafe
        {
            new ReadOnlySpan<float>(m.Parameters.Pointer, theta.Length).CopyTo(theta);
            new ReadOnlySpan<float>(m.Gradients.Pointer, g.Length).CopyTo(g);
        }
        double norm = Math.Sqrt(g.Sum(v => (double)v * v));
        const double eps = 2e-3;
        double At(double step)
        {
            unsafe
            {
                var p = new Span<float>(m.Parameters.Pointer, theta.Length);
                for (int i = 0; i < p.Length; i++) p[i] = (float)(theta[i] + step * g[i] / norm);
            }
            return LossAndGradients(m, batch, backward: false);
        }
        double fd = (At(eps) - At(-eps)) / (2 * eps);
        Assert.True(Math.Abs(fd - norm) <= 1e-3 * norm, $"{model}: directional derivative {fd:R}, gradient norm {norm:R}");
    }

    [Fact]
    public void GradientCheckpointing_GivesBitIdenticalGradients_WithLessMemory()
    {
        const string model = "phi3-tiny";
        var (batch, _, _) = FixtureBatch(model);
        using var plain = TrainableTransformer.Load(ModelFixtures.Folder(model));
        using var recomputing = TrainableTransformer.Load(ModelFixtures.Folder(model), new TrainableTransformerOptions { GradientCheckpointing = true });
        Assert.Equal(LossAndGradients(plain, batch), LossAndGradients(recomputing, batch));
        unsafe
        {
            Assert.True(new ReadOnlySpan<float>(plain.Gradients.Pointer, (int)plain.Gradients.TotalLength)
                .SequenceEqual(new ReadOnlySpan<float>(recomputing.Gradients.Pointer, (int)recomputing.Gradients.TotalLength)));
        }
        Assert.True(recomputing.ActivationBytes < plain.ActivationBytes, $"{recomputing.ActivationBytes} vs {plain.ActivationBytes} bytes");
    }

    [Fact]
    public void Gradients_DoNotDependOnTheThreadCount()
    {
        // The exact-resume guarantee needs bit-identical gradients on any machine: 1 thread vs 4.
        var rng = new Random(9);
        var batch = MicroBatch.Collate(Enumerable.Range(0, 4).Select(_ => TrainingExample.LanguageModeling(Enumerable.Range(0, 64).Select(_ => rng.Next(160)).ToArray())).ToList(), 0);
        int saved = FuseSharp.Tensors.Parallelism.MaxThreads;
        float[] Grads(int threads)
        {
            FuseSharp.Tensors.Parallelism.MaxThreads = threads;
            using var m = TrainableTransformer.Load(ModelFixtures.Folder("llama-tiny"));
            LossAndGradients(m, batch);
            unsafe { return new ReadOnlySpan<float>(m.Gradients.Pointer, (int)m.Gradients.TotalLength).ToArray(); }
        }
        try
        {
            Assert.True(Grads(1).AsSpan().SequenceEqual(Grads(4)));
        }
        finally
        {
            FuseSharp.Tensors.Parallelism.MaxThreads = saved;
        }
    }

    [Fact]
    public void PaddedRows_ContributeNothing()
    {
        // A short row padded to the batch length gives the gradients of the same row alone.
        const string model = "llama-tiny";
        var (_, _, ids) = ModelFixtures.InputIds(model);
        var shortRow = TrainingExample.LanguageModeling(ids[..9]);
        using var a = TrainableTransformer.Load(ModelFixtures.Folder(model));
        using var b = TrainableTransformer.Load(ModelFixtures.Folder(model));
        double alone = LossAndGradients(a, MicroBatch.Collate([shortRow], 0));
        // The second row has only −100 labels, so the loss is the first row's alone.
        var objective = new TrainingObjective();
        var labels = Enumerable.Repeat(TrainingExample.IgnoreIndex, 16).ToArray();
        var loss = objective.Begin([MicroBatch.Collate([shortRow, new TrainingExample(ids[16..32], labels)], 0)])[0];
        b.Run(loss.Batch, loss, backward: true);
        Assert.Equal(alone, objective.Summarize([loss]).Total, 6);
        foreach (var e in a.Gradients.Entries)
        {
            var ga = a.Gradients.Span(e.Name);
            var gb = b.Gradients.Span(e.Name);
            for (int i = 0; i < ga.Length; i++) Assert.True(Math.Abs(ga[i] - gb[i]) <= 1e-6 + 1e-4 * Math.Abs(ga[i]), $"{e.Name}[{i}]: {ga[i]} vs {gb[i]}");
        }
    }

    [Fact]
    public void Mixtral_IsRefusedWithAClearMessage()
    {
        var e = Assert.Throws<TrainingException>(() => TrainableTransformer.Load(ModelFixtures.Folder("mixtral-tiny")));
        Assert.Contains("mixture-of-experts", e.Message);
        Assert.Contains("not supported", e.Message);
    }
}
