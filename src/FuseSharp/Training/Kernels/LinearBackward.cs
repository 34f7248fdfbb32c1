using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of a linear layer over <c>N</c> rows, with the weight in either stored layout:
/// <list type="bullet">
/// <item><c>nn.Linear</c>, W <c>(out, in)</c>, <c>y = x·Wᵀ + b</c>: <c>dx = dy·W</c>, <c>dW += dyᵀ·x</c>;</item>
/// <item>GPT-2 <c>Conv1D</c>, W <c>(in, out)</c>, <c>y = x·W + b</c>: <c>dx = dy·Wᵀ</c>, <c>dW += xᵀ·dy</c>;</item>
/// </list>
/// and <c>db += Σ_rows dy</c>. The products go through <see cref="Gemm"/>, whose results do not depend on the
/// thread count; the bias sum uses fixed row chunks for the same reason. A tied LM head is this kernel with the
/// embedding's gradient as <c>dW</c> (the two contributions add).
/// </summary>
public static class LinearBackward
{
    /// <param name="x">Layer input <c>(N, in)</c> saved by the forward.</param>
    /// <param name="weight">W as stored.</param>
    /// <param name="outputGradient">dL/dy <c>(N, out)</c>.</param>
    /// <param name="rows">N.</param>
    /// <param name="inFeatures">in.</param>
    /// <param name="outFeatures">out.</param>
    /// <param name="weightInOut">True for the <c>(in, out)</c> Conv1D layout.</param>
    /// <param name="inputGradient">dL/dx <c>(N, in)</c>, or empty to skip (the first layer's input needs none).</param>
    /// <param name="weightGradient">dL/dW, accumulated into (same layout as W), or empty to skip (a frozen weight).</param>
    /// <param name="biasGradient">dL/db <c>(out)</c>, accumulated into, or empty for a layer without bias.</param>
    /// <param name="accumulateInput">Add into <paramref name="inputGradient"/> instead of overwriting it (a tensor read by several layers).</param>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> outputGradient, int rows, int inFeatures, int outFeatures,
        bool weightInOut, Span<float> inputGradient, Span<float> weightGradient, Span<float> biasGradient, bool accumulateInput = false)
    {
        long nIn = (long)rows * inFeatures, nOut = (long)rows * outFeatures, nW = (long)inFeatures * outFeatures;
        if (x.Length != nIn) throw new ArgumentException($"x has {x.Length} values, expected {rows} x {inFeatures}", nameof(x));
        if (outputGradient.Length != nOut) throw new ArgumentException($"outputGradient has {outputGradient.Length} values, expected {rows} x {outFeatures}", nameof(outputGradient));
        if (weight.Length != nW) throw new ArgumentException($"weight has {weight.Length} values, expected {inFeatures * (long)outFeatures}", nameof(weight));
        if (!inputGradient.IsEmpty && inputGradient.Length != nIn) throw new ArgumentException("inputGradient has the wrong length", nameof(inputGradient));
        if (!weightGradient.IsEmpty && weightGradient.Length != nW) throw new ArgumentException("weightGradient has the wrong length", nameof(weightGradient));
        if (!biasGradient.IsEmpty && biasGradient.Length != outFeatures) throw new ArgumentException("biasGradient has the wrong length", nameof(biasGradient));
        if (!inputGradient.IsEmpty)
        {
            if (weightInOut) Gemm.MatMul(false, true, rows, inFeatures, outFeatures, outputGradient, outFeatures, weight, outFeatures, inputGradient, inFeatures, accumulateInput);
            else Gemm.MatMul(false, false, rows, inFeatures, outFeatures, outputGradient, outFeatures, weight, inFeatures, inputGradient, inFeatures, accumulateInput);
        }
        if (!weightGradient.IsEmpty)
        {
            if (weightInOut) Gemm.MatMul(true, false, inFeatures, outFeatures, rows, x, inFeatures, outputGradient, outFeatures, weightGradient, outFeatures, accumulate: true);
            else Gemm.MatMul(true, false, outFeatures, inFeatures, rows, outputGradient, outFeatures, x, inFeatures, weightGradient, inFeatures, accumulate: true);
        }
        if (!biasGradient.IsEmpty) BiasBackward(outputGradient, rows, biasGradient);
    }

    /// <summary><c>db += Σ_rows dy</c> for <c>dy: (rows, out)</c>.</summary>
    public static unsafe void BiasBackward(ReadOnlySpan<float> outputGradient, int rows, Span<float> biasGradient)
    {
        int cols = biasGradient.Length;
        if (outputGradient.Length != (long)rows * cols) throw new ArgumentException($"outputGradient has {outputGradient.Length} values, expected {rows} x {cols}", nameof(outputGradient));
        fixed (float* pdy = outputGradient)
        {
            float* dy = pdy;
            ColumnSums.Accumulate(rows, biasGradient, (start, end, partial) =>
            {
                for (int r = start; r < end; r++)
                {
                    float* row = dy + (long)r * cols;
                    for (int c = 0; c < cols; c++) partial[c] += row[c];
                }
            });
        }
    }
}
