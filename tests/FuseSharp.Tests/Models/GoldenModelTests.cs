using FuseSharp.Models;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>Every architecture against the float64 reference of shared/fixtures/models: logits, loss, greedy continuation.</summary>
public class GoldenModelTests
{
    public static TheoryData<string> Cases => new(ModelFixtures.Names);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_MatchTheReference(string name)
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder(name));
        var (b, t, ids) = ModelFixtures.InputIds(name);
        var logits = new FullLogits();
        var loss = new NextTokenLoss();
        model.Forward(new TokenBatch(b, t, ids), new CompositeSink(logits, loss));
        var (abs, rel) = ModelFixtures.Tolerance(name, "logits");
        KernelAssert.Close(ModelFixtures.Expected(name, "logits"), logits.Values, abs, rel, $"{name} logits");
        var (lossAbs, lossRel) = ModelFixtures.Tolerance(name, "loss");
        double expectedLoss = ModelFixtures.Case(name)["loss"]!.GetValue<double>();
        Assert.True(Math.Abs(loss.Mean - expectedLoss) <= lossAbs + lossRel * Math.Abs(expectedLoss), $"{name}: loss {loss.Mean}, expected {expectedLoss}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GreedyContinuation_MatchesTheReference(string name)
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder(name));
        var gen = ModelFixtures.Generate(name);
        var prompt = gen["prompt_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
        var expected = gen["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
        using var cache = model.CreateCache(1, prompt.Count + expected.Count);
        var last = new LastLogits();
        var produced = new List<int>();
        model.Forward(TokenBatch.Single(prompt), last, cache);
        for (int i = 0; i < expected.Count; i++)
        {
            int next = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last.Row(0));
            produced.Add(next);
            if (i + 1 < expected.Count) model.Forward(TokenBatch.Single([next]), last, cache);
        }
        Assert.Equal(expected, produced);
    }
}
