using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

public class NormTests
{
    [Theory]
    [InlineData(1, 8, 0f)]
    [InlineData(5, 37, 0f)]
    [InlineData(64, 768, 0f)]
    [InlineData(3, 33, 1f)]
    public void RmsNorm_MatchesReference(int rows, int c, float offset)
    {
        var rng = new Random(20230828 + c);
        var x = KernelAssert.Random(rng, rows * c, 3);
        var w = KernelAssert.Random(rng, c);
        float[] y = new float[x.Length], yr = new float[x.Length], r = new float[rows], rr = new float[rows];
        RmsNorm.Forward(x, w, offset, 1e-6f, y, r);
        RmsNorm.ForwardReference(x, w, offset, 1e-6f, yr, rr);
        KernelAssert.Close(yr, y, 1e-6, 1e-5, "y");
        KernelAssert.Close(rr, r, 0, 1e-6, "rstd");
    }

    [Fact]
    public void RmsNorm_OfAConstantRowIsTheWeight()
    {
        // x = a everywhere: mean square a², so y = a / sqrt(a² + eps) · w ≈ sign(a) · w.
        var x = Enumerable.Repeat(-4f, 16).ToArray();
        var w = Enumerable.Range(0, 16).Select(i => i * 0.5f).ToArray();
        var y = new float[16];
        RmsNorm.Forward(x, w, 0f, 0f, y);
        for (int i = 0; i < 16; i++) Assert.Equal(-w[i], y[i], 6);
    }

    [Fact]
    public void RmsNorm_InPlace()
    {
        var rng = new Random(7);
        var x = KernelAssert.Random(rng, 4 * 20);
        var w = KernelAssert.Random(rng, 20);
        var expected = new float[x.Length];
        RmsNorm.ForwardReference(x, w, 0f, 1e-5f, expected);
        RmsNorm.Forward(x, w, 0f, 1e-5f, x);
        KernelAssert.Close(expected, x, 1e-6, 1e-5);
    }

    [Theory]
    [InlineData(1, 8, true)]
    [InlineData(7, 45, true)]
    [InlineData(32, 256, false)]
    public void LayerNorm_MatchesReference(int rows, int c, bool bias)
    {
        var rng = new Random(20230828 + c);
        var x = KernelAssert.Random(rng, rows * c, 2);
        for (int i = 0; i < x.Length; i++) x[i] += 100f; // a large mean must not cost precision
        var w = KernelAssert.Random(rng, c);
        var b = bias ? KernelAssert.Random(rng, c) : [];
        float[] y = new float[x.Length], yr = new float[x.Length], m = new float[rows], mr = new float[rows], r = new float[rows], rr = new float[rows];
        LayerNorm.Forward(x, w, b, 1e-5f, y, m, r);
        LayerNorm.ForwardReference(x, w, b, 1e-5f, yr, mr, rr);
        KernelAssert.Close(yr, y, 2e-5, 1e-4, "y");
        KernelAssert.Close(mr, m, 0, 1e-6, "mean");
        KernelAssert.Close(rr, r, 0, 1e-4, "rstd");
    }

    [Fact]
    public void LayerNorm_OutputHasZeroMeanUnitVariance()
    {
        var rng = new Random(3);
        var x = KernelAssert.Random(rng, 64, 5);
        var w = Enumerable.Repeat(1f, 64).ToArray();
        var y = new float[64];
        LayerNorm.Forward(x, w, default, 0f, y);
        Assert.Equal(0, y.Average(), 5);
        Assert.Equal(1, y.Select(v => (double)v * v).Average(), 4);
    }

    [Fact]
    public void Norms_RejectMismatchedLengths()
    {
        Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[10], new float[4], 0, 1e-6f, new float[10]));
        Assert.Throws<ArgumentException>(() => RmsNorm.Forward(new float[8], new float[4], 0, 1e-6f, new float[4]));
        Assert.Throws<ArgumentException>(() => LayerNorm.Forward(new float[8], new float[4], new float[3], 1e-6f, new float[8]));
    }
}
