using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>
/// Central finite differences of a scalar function evaluated in float64, against an analytic gradient computed by a
/// float32 kernel. The forward references live in the tests, written independently of the kernels they check.
/// </summary>
internal static class GradCheck
{
    /// <summary>Deterministic values in [−scale, scale).</summary>
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    public static double[] ToDouble(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    /// <summary>
    /// Checks <paramref name="analytic"/> = ∂f/∂x at <paramref name="x"/> coordinate by coordinate (every coordinate, or
    /// <paramref name="samples"/> of them chosen by seed), with step <c>h·max(1, |x|)</c>.
    /// Passes when <c>|analytic − fd| ≤ tol·(1 + max|fd|)</c> scaled per coordinate.
    /// </summary>
    public static void Check(string what, double[] x, Func<double[], double> f, ReadOnlySpan<float> analytic, double tol = 2e-4, int samples = 0, double h = 1e-5)
    {
        Assert.Equal(x.Length, analytic.Length);
        var idx = Enumerable.Range(0, x.Length).ToArray();
        if (samples > 0 && samples < x.Length)
        {
            var rng = new Random(x.Length * 31 + samples);
            idx = idx.OrderBy(_ => rng.Next()).Take(samples).ToArray();
        }
        var fd = new double[idx.Length];
        double maxAbs = 0;
        for (int n = 0; n < idx.Length; n++)
        {
            int i = idx[n];
            double orig = x[i], step = h * Math.Max(1, Math.Abs(orig));
            x[i] = orig + step;
            double fp = f(x);
            x[i] = orig - step;
            double fm = f(x);
            x[i] = orig;
            fd[n] = (fp - fm) / (2 * step);
            maxAbs = Math.Max(maxAbs, Math.Abs(fd[n]));
        }
        for (int n = 0; n < idx.Length; n++)
        {
            double a = analytic[idx[n]];
            double err = Math.Abs(a - fd[n]);
            Assert.True(err <= tol * (maxAbs + Math.Abs(fd[n])) + 1e-7,
                $"{what}: coordinate {idx[n]}: analytic {a:R}, finite difference {fd[n]:R} (|diff| {err:E2}, max |fd| {maxAbs:E2})");
        }
    }

    /// <summary>Σ_i w_i y_i: the scalar whose gradient with respect to y is w.</summary>
    public static double Dot(ReadOnlySpan<double> y, ReadOnlySpan<float> w)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y[i] * w[i];
        return s;
    }
}
