using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

public class SoftmaxTopKTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(32000)]
    [InlineData(151937)]
    public void LogSumExp_MatchesReference(int n)
    {
        var x = KernelAssert.Random(new Random(n), n, 30);
        Assert.Equal(Softmax.LogSumExpReference(x), Softmax.LogSumExp(x), 1e-4);
    }

    [Fact]
    public void LogSumExp_HandlesInfinitiesAndHugeValues()
    {
        Assert.Equal(float.NegativeInfinity, Softmax.LogSumExp(new[] { float.NegativeInfinity, float.NegativeInfinity }));
        Assert.Equal(1000f + MathF.Log(2), Softmax.LogSumExp(new[] { 1000f, 1000f, float.NegativeInfinity }), 3);
        Assert.True(float.IsNaN(Softmax.LogSumExp(new[] { 1f, float.NaN })));
    }

    [Fact]
    public void CrossEntropy_IsLseMinusTargetLogit_AndSoftmaxSumsToOne()
    {
        var x = KernelAssert.Random(new Random(5), 1000, 10);
        float ce = Softmax.CrossEntropy(x, 17, out var lse);
        Assert.Equal(Softmax.LogSumExpReference(x) - x[17], ce, 1e-5);
        Assert.Equal(Softmax.LogSumExpReference(x), lse, 1e-5);
        var p = new float[x.Length];
        Softmax.Forward(x, p);
        Assert.Equal(1.0, p.Sum(v => (double)v), 5);
        Assert.Equal(Math.Exp(-ce), p[17], 6);
        Assert.Throws<ArgumentOutOfRangeException>(() => Softmax.CrossEntropy(x, 1000, out _));
    }

    [Theory]
    [InlineData(1, 10)]
    [InlineData(10, 32000)]
    [InlineData(50, 1003)]
    [InlineData(7, 7)]
    public void TopK_MatchesTheSortingReference(int k, int n)
    {
        var rng = new Random(n * 31 + k);
        // Quantised values force many ties; a few NaNs and infinities too.
        var x = Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.NextDouble() * 40 - 20)).ToArray();
        if (n > 20) { x[3] = float.NaN; x[n / 2] = float.PositiveInfinity; x[n - 1] = float.NegativeInfinity; }
        int[] ids = new int[k], idsRef = new int[k];
        float[] vals = new float[k], valsRef = new float[k];
        TopK.Select(x, ids, vals);
        TopK.SelectReference(x, idsRef, valsRef);
        Assert.Equal(idsRef, ids);
        Assert.Equal(valsRef, vals);
    }

    [Fact]
    public void TopK_SortsDescendingWithLowerIndexFirstOnTies()
    {
        var x = new float[] { 1, 5, 3, 5, 2, 5 };
        int[] ids = new int[4];
        float[] vals = new float[4];
        TopK.Select(x, ids, vals);
        Assert.Equal(new[] { 1, 3, 5, 2 }, ids);
        Assert.Equal(new float[] { 5, 5, 5, 3 }, vals);
        Assert.Throws<ArgumentException>(() => TopK.Select(x, new int[7], new float[7]));
    }
}
