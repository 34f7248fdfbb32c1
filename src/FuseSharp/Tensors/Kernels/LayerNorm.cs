using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// LayerNorm (Ba et al. 2016, https://arxiv.org/abs/1607.06450) over the rows of <c>x: (rows, C)</c>:
/// <c>y[r, c] = (x[r, c] − mean[r]) · rstd[r] · w[c] + b[c]</c>, <c>rstd = 1 / sqrt(var + eps)</c> with the
/// population (biased) variance, as <c>torch.nn.LayerNorm</c>. The bias is optional (MPT's LayerNorm has none).
/// Mean and variance are computed in two passes, so rows with a large mean keep their precision.
/// <para>Backward needs <c>x</c>, <c>w</c> and the saved <c>mean</c>, <c>rstd</c>: with <c>x̂ = (x − mean)·rstd</c>
/// and <c>g = dy · w</c>: <c>dx = rstd · (g − mean_c(g) − x̂ · mean_c(g · x̂))</c>, <c>dw = Σ_r dy · x̂</c>,
/// <c>db = Σ_r dy</c>.</para>
/// </summary>
public static class LayerNorm
{
    /// <summary>Normalises every row of <paramref name="x"/> into <paramref name="destination"/> (which may be <paramref name="x"/>).</summary>
    /// <param name="x">Input rows, <c>(rows, C)</c> with <c>C = weight.Length</c>.</param>
    /// <param name="weight">Scale, length C.</param>
    /// <param name="bias">Shift, length C, or empty for none.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="destination">Output rows.</param>
    /// <param name="mean">Optional per-row mean (for a backward pass).</param>
    /// <param name="rstd">Optional per-row <c>1/sqrt(var + eps)</c>.</param>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> destination,
        Span<float> mean = default, Span<float> rstd = default)
    {
        int c = weight.Length;
        int rows = RmsNorm.Validate(x, c, destination, rstd);
        RmsNorm.Validate(x, c, destination, mean);
        if (!bias.IsEmpty && bias.Length != c) throw new ArgumentException($"bias has {bias.Length} values, weight has {c}", nameof(bias));
        fixed (float* px = x, pw = weight, pb = bias, py = destination, pm = mean, pr = rstd)
        {
            float* X = px, W = pw, Bi = bias.IsEmpty ? null : pb, Y = py, M = mean.IsEmpty ? null : pm, R = rstd.IsEmpty ? null : pr;
            ParallelRows.For(rows, 4L * c, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    float* xr = X + (long)r * c;
                    float mu = TensorPrimitives.Sum(new ReadOnlySpan<float>(xr, c)) / c;
                    float var = SumOfSquaredDeviations(xr, mu, c) / c;
                    float s = 1f / MathF.Sqrt(var + eps);
                    if (M != null) M[r] = mu;
                    if (R != null) R[r] = s;
                    NormalizeRow(xr, mu, s, W, Bi, Y + (long)r * c, c);
                }
            });
        }
    }

    /// <summary>The scalar reference in float64.</summary>
    public static void ForwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> destination,
        Span<float> mean = default, Span<float> rstd = default)
    {
        int c = weight.Length;
        int rows = RmsNorm.Validate(x, c, destination, rstd);
        for (int r = 0; r < rows; r++)
        {
            double mu = 0;
            for (int i = 0; i < c; i++) mu += x[r * c + i];
            mu /= c;
            double var = 0;
            for (int i = 0; i < c; i++) var += (x[r * c + i] - mu) * (x[r * c + i] - mu);
            var /= c;
            double s = 1.0 / Math.Sqrt(var + eps);
            if (!mean.IsEmpty) mean[r] = (float)mu;
            if (!rstd.IsEmpty) rstd[r] = (float)s;
            for (int i = 0; i < c; i++)
                destination[r * c + i] = (float)((x[r * c + i] - mu) * s * weight[i] + (bias.IsEmpty ? 0.0 : bias[i]));
        }
    }

    private static unsafe float SumOfSquaredDeviations(float* x, float mu, int c)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && c >= 8)
        {
            var vm = Vector256.Create(mu);
            var acc = Vector256<float>.Zero;
            for (; i <= c - 8; i += 8)
            {
                var d = Vector256.Load(x + i) - vm;
                acc = Vector256.FusedMultiplyAdd(d, d, acc);
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < c; i++) sum += (x[i] - mu) * (x[i] - mu);
        return sum;
    }

    private static unsafe void NormalizeRow(float* x, float mu, float s, float* w, float* b, float* y, int c)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(mu);
            var vs = Vector256.Create(s);
            for (; i <= c - 8; i += 8)
            {
                var v = (Vector256.Load(x + i) - vm) * vs * Vector256.Load(w + i);
                if (b != null) v += Vector256.Load(b + i);
                Vector256.Store(v, y + i);
            }
        }
        for (; i < c; i++) y[i] = (x[i] - mu) * s * w[i] + (b != null ? b[i] : 0f);
    }
}
