using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

/// <summary>Element-wise comparison |actual − expected| ≤ abs + rel·|expected| with the worst element in the message.</summary>
internal static class KernelAssert
{
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double abs, double rel, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNegativeInfinity(e) && double.IsNegativeInfinity(a)) continue;
            double excess = Math.Abs(a - e) - (abs + rel * Math.Abs(e));
            if (double.IsNaN(a) != double.IsNaN(e) || excess > worstExcess)
            {
                worstExcess = double.IsNaN(excess) ? double.PositiveInfinity : excess;
                worst = i;
            }
        }
        Assert.True(worst < 0, worst < 0 ? "" : $"{what}[{worst}]: expected {expected[worst]}, got {actual[worst]}");
    }

    public static float[] Random(Random rng, int n, double scale = 1)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }
}
