using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>
/// AdamW and the causal-LM loss against the model fixtures (independent float64 PyTorch reference):
/// one AdamW step from the golden gradients must land on every <c>adamw.*</c> tensor, and the loss of the golden
/// logits must be the golden loss.
/// </summary>
public class OptimizerFixtureTests
{
    public static TheoryData<string> Models => new()
    {
        "llama-tiny", "llama-tied-tiny", "llama-bf16-tiny", "mistral-tiny", "qwen2-tiny", "mixtral-tiny", "phi3-tiny",
        "gemma-tiny", "internlm2-tiny", "gpt2-tiny", "gpt_neox-tiny", "mpt-tiny",
    };

    private static JsonObject Case(string model) => (JsonObject)JsonNode.Parse(File.ReadAllText(TestPaths.Fixture("models", model, "case.json")))!;

    [Theory]
    [MemberData(nameof(Models))]
    public void AdamW_OneStepFromGoldenGradients_MatchesTorch(string model)
    {
        var c = Case(model)["adamw"]!.AsObject();
        double lr = c["lr"]!.GetValue<double>(), eps = c["eps"]!.GetValue<double>(), wd = c["weight_decay"]!.GetValue<double>();
        var betas = c["betas"]!.AsArray();
        using var weights = SafetensorsFile.Open(TestPaths.Fixture("models", model, "model.safetensors"));
        using var expected = SafetensorsFile.Open(TestPaths.Fixture("models", model, "expected.safetensors"));
        using var parameters = TensorArena.Create(weights.Tensors.Select(t => (t.Name, t.Shape)));
        using var grads = parameters.CreateLike();
        foreach (var t in weights.Tensors)
        {
            weights.ReadSingle(t.Name, parameters.Span(t.Name)); // BF16 weights widen exactly to F32
            expected.ReadSingle("grad." + t.Name, grads.Span(t.Name));
        }
        // The fixture's optimizer is a plain torch.optim.AdamW(model.parameters()): decay on every tensor.
        using var adam = new AdamW(parameters, new AdamWOptions(betas[0]!.GetValue<double>(), betas[1]!.GetValue<double>(), eps, wd), WeightDecayPolicy.All);
        adam.Step(grads, lr);
        Assert.Equal(1, adam.StepCount);
        foreach (var t in weights.Tensors)
        {
            var want = new float[t.ElementCount];
            expected.ReadSingle("adamw." + t.Name, want);
            var got = parameters.Span(t.Name);
            int worst = 0;
            for (int i = 1; i < want.Length; i++)
                if (Math.Abs(got[i] - want[i]) > Math.Abs(got[worst] - want[worst])) worst = i;
            Assert.True(Math.Abs(got[worst] - want[worst]) <= 1e-6, $"{model} {t.Name}[{worst}]: {got[worst]:R} vs {want[worst]:R}");
        }
    }

    [Fact]
    public void AdamW_DefaultPolicy_DoesNotDecayBiasesAndNorms()
    {
        using var p = TensorArena.Create([("w", new Shape(2, 2)), ("norm.weight", new Shape(2)), ("b", new Shape(2))]);
        p.Span("w").Fill(1f);
        p.Span("norm.weight").Fill(1f);
        p.Span("b").Fill(1f);
        using var g = p.CreateLike(); // zero gradient: only decay moves a parameter
        using var adam = new AdamW(p, new AdamWOptions(WeightDecay: 0.5));
        adam.Step(g, 0.1);
        Assert.Equal(0.95f, p.Span("w")[0]);
        Assert.Equal(1f, p.Span("norm.weight")[0]);
        Assert.Equal(1f, p.Span("b")[0]);
        var custom = new WeightDecayPolicy(NoDecayPatterns: ["w"]);
        Assert.False(custom.AppliesTo("w", new Shape(2, 2)));
        Assert.True(WeightDecayPolicy.All.AppliesTo("b", new Shape(2)));
    }

    [Fact]
    public unsafe void AdamW_VectorPathEqualsScalarReference_BitForBit()
    {
        const int n = 1003;
        var p = GradCheck.Random(n, 30);
        var g = GradCheck.Random(n, 31, 1e-3f);
        var m = GradCheck.Random(n, 32, 1e-3f);
        var v = GradCheck.Random(n, 33, 1e-6f).Select(Math.Abs).ToArray();
        var (p2, m2, v2) = ((float[])p.Clone(), (float[])m.Clone(), (float[])v.Clone());
        var s = AdamW.StepScalars.For(new AdamWOptions(0.9, 0.95, 1e-8, 0.1), 7, 3e-4);
        fixed (float* pp = p, pg = g, pm = m, pv = v) AdamW.Update(pp, pg, pm, pv, n, s, decay: true);
        for (int i = 0; i < n; i++) AdamW.UpdateOne(ref p2[i], g[i], ref m2[i], ref v2[i], s, decay: true);
        Assert.Equal(p2, p);
        Assert.Equal(m2, m);
        Assert.Equal(v2, v);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void CausalLmLoss_OfGoldenLogits_IsTheGoldenLoss(string model)
    {
        using var expected = SafetensorsFile.Open(TestPaths.Fixture("models", model, "expected.safetensors"));
        var idsEntry = expected.GetEntry("input_ids");
        int b = (int)idsEntry.Shape[0], t = (int)idsEntry.Shape[1];
        var ids = MemoryMarshal.Cast<byte, long>(expected.GetBytes("input_ids")).ToArray().Select(x => (int)x).ToArray();
        var logits = new float[expected.GetEntry("logits").ElementCount];
        expected.ReadSingle("logits", logits);
        int v = logits.Length / (b * t);
        var examples = Enumerable.Range(0, b).Select(r => TrainingExample.LanguageModeling(ids[(r * t)..((r + 1) * t)])).ToList();
        var objective = new TrainingObjective();
        var loss = objective.Begin([MicroBatch.Collate(examples, 0)])[0];
        loss.Apply(0, b * t, logits, v);
        var parts = objective.Summarize([loss]);
        double golden = Case(model)["loss"]!.GetValue<double>();
        Assert.Equal(b * (t - 1), parts.ClmPositions);
        Assert.True(Math.Abs(parts.Total - golden) <= 1e-5 + 1e-5 * golden, $"{model}: loss {parts.Total:R} vs {golden:R}");
        // The gradient rows sum to 0 (softmax − onehot, times 1/N), and the last position of each row has none.
        for (int p = 0; p < b * t; p++)
        {
            double rowSum = 0, rowAbs = 0;
            for (int i = 0; i < v; i++) { rowSum += logits[p * v + i]; rowAbs += Math.Abs(logits[p * v + i]); }
            Assert.True(Math.Abs(rowSum) < 1e-6);
            if (p % t == t - 1) Assert.Equal(0, rowAbs);
            else Assert.InRange(rowAbs, 1e-9, 2.0 / (b * (t - 1)) + 1e-6); // |softmax − onehot|₁ = 2(1 − p_y), over N
        }
    }
}
