using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of LayerNorm over rows <c>x: (rows, C)</c>, <c>y = (x − mean)·rstd·w + b</c> (population variance, as
/// <c>torch.nn.LayerNorm</c>), from the saved <c>mean</c> and <c>rstd</c>. With <c>x̂ = (x − mean)·rstd</c> and
/// <c>g = dy·w</c>:
/// <code>
/// dx = rstd · (g − mean_c(g) − x̂ · mean_c(g · x̂))
/// dw += Σ_rows dy · x̂,   db += Σ_rows dy
/// </code>
/// </summary>
public static class LayerNormBackward
{
    /// <param name="x">Forward input <c>(rows, C)</c>.</param>
    /// <param name="weight">w <c>(C)</c>.</param>
    /// <param name="mean">Saved mean per row.</param>
    /// <param name="rstd">Saved <c>1/sqrt(var + eps)</c> per row.</param>
    /// <param name="outputGradient">dL/dy <c>(rows, C)</c>.</param>
    /// <param name="inputGradient">dL/dx <c>(rows, C)</c>; may be <paramref name="outputGradient"/> itself.</param>
    /// <param name="weightGradient">dL/dw, accumulated into; empty to skip.</param>
    /// <param name="biasGradient">dL/db, accumulated into; empty for a norm without bias (MPT).</param>
    /// <param name="accumulateInput">Add into <paramref name="inputGradient"/> instead of overwriting it; not with aliasing.</param>
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> outputGradient, Span<float> inputGradient, Span<float> weightGradient, Span<float> biasGradient, bool accumulateInput = false)
    {
        int c = weight.Length;
        int rows = NormChecks.Rows(x, c, rstd, outputGradient, inputGradient, weightGradient);
        if (mean.Length != rows) throw new ArgumentException($"mean has {mean.Length} values for {rows} rows", nameof(mean));
        if (!biasGradient.IsEmpty && biasGradient.Length != c) throw new ArgumentException($"biasGradient has {biasGradient.Length} values, weight has {c}", nameof(biasGradient));
        fixed (float* px = x, pw = weight, pm = mean, pr = rstd, pdy = outputGradient, pdx = inputGradient)
        {
            float* X = px, W = pw, M = pm, R = pr, DY = pdy, DX = pdx;
            if (!weightGradient.IsEmpty)
            {
                ColumnSums.Accumulate(rows, weightGradient, (start, end, partial) =>
                {
                    for (int r = start; r < end; r++)
                    {
                        float* xr = X + (long)r * c, dyr = DY + (long)r * c;
                        float mu = M[r], s = R[r];
                        for (int i = 0; i < c; i++) partial[i] += dyr[i] * ((xr[i] - mu) * s);
                    }
                });
            }
            if (!biasGradient.IsEmpty) LinearBackward.BiasBackward(outputGradient, rows, biasGradient);
            ParallelRows.For(rows, 6L * c, (start, end) =>
            {
                for (int r = start; r < end; r++)
                {
                    float* xr = X + (long)r * c, dyr = DY + (long)r * c, dxr = DX + (long)r * c;
                    float mu = M[r], s = R[r];
                    double sumG = 0, sumGx = 0;
                    for (int i = 0; i < c; i++)
                    {
                        double g = (double)dyr[i] * W[i];
                        sumG += g;
                        sumGx += g * ((xr[i] - mu) * s);
                    }
                    float meanG = (float)(sumG / c), meanGx = (float)(sumGx / c);
                    for (int i = 0; i < c; i++)
                    {
                        float v = s * (dyr[i] * W[i] - meanG - (xr[i] - mu) * s * meanGx);
                        dxr[i] = accumulateInput ? dxr[i] + v : v;
                    }
                }
            });
        }
    }
}
