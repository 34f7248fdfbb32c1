using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of RMSNorm over rows <c>x: (rows, C)</c>, <c>y = (x · rstd) · (offset + w)</c> with
/// <c>rstd = 1 / sqrt(mean(x²) + eps)</c> saved by the forward (offset 1 for Gemma, whose checkpoints store w − 1).
/// With <c>g = dy · (offset + w)</c>:
/// <code>
/// dx = rstd · (g − x · rstd² · mean_c(g · x))
/// dw += Σ_rows dy · x · rstd
/// </code>
/// </summary>
public static class RmsNormBackward
{
    /// <param name="x">Forward input <c>(rows, C)</c>.</param>
    /// <param name="weight">w <c>(C)</c>.</param>
    /// <param name="weightOffset">0, or 1 for Gemma.</param>
    /// <param name="rstd">Saved <c>rstd</c> per row <c>(rows)</c>.</param>
    /// <param name="outputGradient">dL/dy <c>(rows, C)</c>.</param>
    /// <param name="inputGradient">dL/dx <c>(rows, C)</c>; may be <paramref name="outputGradient"/> itself.</param>
    /// <param name="weightGradient">dL/dw <c>(C)</c>, accumulated into; empty to skip.</param>
    /// <param name="accumulateInput">Add into <paramref name="inputGradient"/> (a residual stream) instead of overwriting it; not with aliasing.</param>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float weightOffset, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> outputGradient, Span<float> inputGradient, Span<float> weightGradient, bool accumulateInput = false)
    {
        int c = weight.Length;
        int rows = NormChecks.Rows(x, c, rstd, outputGradient, inputGradient, weightGradient);
        fixed (float* px = x, pw = weight, pr = rstd, pdy = outputGradient, pdx = inputGradient)
        {
            float* X = px, W = pw, R = pr, DY = pdy, DX = pdx;
            // dw first: the input gradient may overwrite dy.
            if (!weightGradient.IsEmpty)
            {
                ColumnSums.Accumulate(rows, weightGradient, (start, end, partial) =>
                {
                    for (int r = start; r < end; r++)
                    {
                        float* xr = X + (long)r * c, dyr = DY + (long)r * c;
                        float s = R[r];
                        for (int i = 0; i < c; i++) partial[i] += dyr[i] * (xr[i] * s);
                    }
                });
            }
            ParallelRows.For(rows, 4L * c, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    float* xr = X + (long)r * c, dyr = DY + (long)r * c, dxr = DX + (long)r * c;
                    float s = R[r];
                    double dot = 0; // Σ g·x
                    for (int i = 0; i < c; i++) dot += (double)dyr[i] * (W[i] + weightOffset) * xr[i];
                    float k = (float)(dot / c) * s * s;
                    for (int i = 0; i < c; i++)
                    {
                        float v = s * (dyr[i] * (W[i] + weightOffset) - xr[i] * k);
                        dxr[i] = accumulateInput ? dxr[i] + v : v;
                    }
                }
            });
        }
    }
}

/// <summary>Argument checks shared by the norm backwards.</summary>
internal static class NormChecks
{
    public static int Rows(ReadOnlySpan<float> x, int c, ReadOnlySpan<float> perRow, ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw)
    {
        if (c <= 0) throw new ArgumentException("weight is empty", nameof(c));
        if (x.Length % c != 0) throw new ArgumentException($"x has {x.Length} values, not a whole number of rows of {c}", nameof(x));
        int rows = x.Length / c;
        if (perRow.Length != rows) throw new ArgumentException($"saved statistics have {perRow.Length} values for {rows} rows", nameof(perRow));
        if (dy.Length != x.Length || dx.Length != x.Length) throw new ArgumentException("gradients must have the length of x", nameof(dy));
        if (!dw.IsEmpty && dw.Length != c) throw new ArgumentException($"weightGradient has {dw.Length} values, weight has {c}", nameof(dw));
        return rows;
    }
}
