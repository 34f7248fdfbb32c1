using FuseSharp.Models;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>Every architecture against the float64 reference of shared/fixtures/models: logits and loss (greedy continuations: GenerationTests).</summary>
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
}
