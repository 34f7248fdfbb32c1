using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// RMSNorm (Zhang and Sennrich 2019, https://arxiv.org/abs/1910.07467) over the rows of <c>x: (rows, C)</c>:
/// <c>y[r, c] = (x[r, c] · rstd[r]) · (offset + w[c])</c> with <c>rstd[r] = 1 / sqrt(mean_c x[r, c]² + eps)</c>.
/// <c>offset</c> is 0 for Llama-style norms and 1 for Gemma, whose checkpoints store <c>w − 1</c>.
/// The order of the products is the one transformers uses in float32 (normalise first, then scale).
/// <para>Backward needs <c>x</c>, <c>w</c> and the saved <c>rstd</c>: with <c>g = dy · (offset + w)</c>,
/// <c>dx = rstd · (g − x · rstd² · mean_c(g · x))</c> and <c>dw = Σ_r dy · x · rstd</c>.</para>
/// </summary>
public static class RmsNorm
{
    /// <summary>Normalises every row of <paramref name="x"/> into <paramref name="destination"/> (which may be <paramref name="x"/>).</summary>
    /// <param name="x">Input rows, <c>(rows, C)</c> with <c>C = weight.Length</c>.</param>
    /// <param name="weight">Scale <c>w</c>, length C.</param>
    /// <param name="weightOffset">Added to every weight (Gemma: 1).</param>
    /// <param name="eps">Added to the mean square before the square root.</param>
    /// <param name="destination">Output rows, same length as <paramref name="x"/>.</param>
    /// <param name="rstd">Optional: receives <c>rstd</c> per row (for a backward pass); empty to skip.</param>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float weightOffset, float eps, Span<float> destination, Span<float> rstd = default)
    {
        int c = weight.Length;
        int rows = Validate(x, c, destination, rstd);
        fixed (float* px = x, pw = weight, py = destination, pr = rstd)
        {
            float* X = px, W = pw, Y = py, R = pr;
            bool saveRstd = !rstd.IsEmpty;
            ParallelRows.For(rows, 3L * c, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    var row = new ReadOnlySpan<float>(X + (long)r * c, c);
                    float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(row) / c + eps);
                    if (saveRstd) R[r] = s;
                    ScaleRow(X + (long)r * c, W, weightOffset, s, Y + (long)r * c, c);
                }
            });
        }
    }

    /// <summary>The scalar reference: the same formula in float64, rounded once.</summary>
    public static void ForwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float weightOffset, float eps, Span<float> destination, Span<float> rstd = default)
    {
        int c = weight.Length;
        int rows = Validate(x, c, destination, rstd);
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < c; i++) ss += (double)x[r * c + i] * x[r * c + i];
            double s = 1.0 / Math.Sqrt(ss / c + eps);
            if (!rstd.IsEmpty) rstd[r] = (float)s;
            for (int i = 0; i < c; i++) destination[r * c + i] = (float)(x[r * c + i] * s * (weightOffset + (double)weight[i]));
        }
    }

    private static unsafe void ScaleRow(float* x, float* w, float offset, float s, float* y, int c)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            var vo = Vector256.Create(offset);
            for (; i <= c - 8; i += 8)
                Vector256.Store(Vector256.Load(x + i) * vs * (Vector256.Load(w + i) + vo), y + i);
        }
        for (; i < c; i++) y[i] = x[i] * s * (w[i] + offset);
    }

    internal static int Validate(ReadOnlySpan<float> x, int c, Span<float> destination, Span<float> perRow)
    {
        if (c <= 0) throw new ArgumentException("weight is empty", nameof(x));
        if (x.Length % c != 0) throw new ArgumentException($"x has {x.Length} values, not a whole number of rows of {c}", nameof(x));
        if (destination.Length != x.Length) throw new ArgumentException($"destination has {destination.Length} values, x has {x.Length}", nameof(destination));
        int rows = x.Length / c;
        if (!perRow.IsEmpty && perRow.Length != rows) throw new ArgumentException($"per-row statistics span has {perRow.Length} values for {rows} rows", nameof(perRow));
        return rows;
    }
}
