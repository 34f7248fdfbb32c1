using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

public class ActivationTests
{
    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(1.0, 0.157299207050285)]
    [InlineData(-1.0, 1.842700792949715)]
    [InlineData(2.0, 0.004677734981047266)]
    [InlineData(3.0, 2.209049699858544e-05)]
    [InlineData(5.0, 1.537459794428035e-12)]
    [InlineData(-4.0, 1.999999984582742)]
    public void ErfcReference_MatchesKnownValues(double x, double expected) =>
        Assert.Equal(expected, Activations.Erfc(x), Math.Max(1e-15, expected * 1e-12));

    [Theory]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.Gelu)]
    [InlineData(ActivationKind.GeluTanh)]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.QuickGelu)]
    public void Apply_MatchesTheFloat64Reference(ActivationKind kind)
    {
        // A dense grid over [-15, 15] plus the tails, odd length for the scalar tail.
        var x = Enumerable.Range(0, 3001).Select(i => -15f + i * 0.01f).Concat([-60f, -30f, 30f, 60f, 0f, -0f, 1e-8f]).ToArray();
        var y = new float[x.Length];
        Activations.Apply(x, y, kind);
        var expected = x.Select(v => (float)Activations.Reference(v, kind)).ToArray();
        KernelAssert.Close(expected, y, 1e-7, 2e-6, kind.ToString());
    }

    [Theory]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.GeluTanh)]
    [InlineData(ActivationKind.Gelu)]
    public void Gated_IsActivationTimesUp_AndWorksInPlace(ActivationKind kind)
    {
        var rng = new Random(11);
        var gate = KernelAssert.Random(rng, 173, 6);
        var up = KernelAssert.Random(rng, 173, 2);
        var expected = gate.Select((g, i) => (float)(Activations.Reference(g, kind) * up[i])).ToArray();
        Activations.Gated(gate, up, gate, kind);
        KernelAssert.Close(expected, gate, 1e-6, 2e-6);
    }

    [Fact]
    public void Gelu_IsExactErfGelu_NotTheTanhApproximation()
    {
        // At x = 1 the two differ by ~1.6e-4: exact 0.841344746, tanh 0.841191990.
        var y = new float[2];
        Activations.Apply(new float[] { 1f }, y.AsSpan(0, 1), ActivationKind.Gelu);
        Activations.Apply(new float[] { 1f }, y.AsSpan(1, 1), ActivationKind.GeluTanh);
        Assert.Equal(0.841344746, y[0], 6);
        Assert.Equal(0.841191990, y[1], 6);
    }
}
