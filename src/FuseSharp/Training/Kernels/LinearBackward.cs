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
    public static unsafe void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> outputGradient, int rows, int inFeatures, int outFeatures,
        bool weightInOut, Span<float> inputGradient, Span<float> weightGradient, Span<float> biasGradient, bool accumulateInput = false)
    {
        long nIn = (long)rows * inFeatures, nOut = (long)rows * outFeatures, nW = (long)inFeatures * outFeatures;
        if (x.Length != nIn) throw new ArgumentException($"x has {x.Length} values, expected {rows} x {inFeatures}", nameof(x));
        if (outputGradient.Length != nOut) throw new ArgumentException($"outputGradient has {outputGradient.Length} values, expected {rows} x {outFeatures}", nameof(outputGradient));
        if (weight.Length != nW) throw new ArgumentException($"weight has {weight.Length} values, expected {inFeatures * (long)outFeatures}", nameof(weight));
        if (!inputGradient.IsEmpty && inputGradient.Length != nIn) throw new ArgumentException("inputGradient has the wrong length", nameof(inputGradient));
        if (!weightGradient.IsEmpty && weightGradient.Length != nW) throw new ArgumentException("weightGradient has the wrong length", nameof(weightGradient));
        if (!biasGradient.IsEmpty && biasGradient.Length != outFeatures) throw new ArgumentException("biasGradient has the wrong length", nameof(biasGradient));
        fixed (float* px = x, pw = weight, pdy = outputGradient, pdx = inputGradient, pdw = weightGradient, pdb = biasGradient)
        {
            Backward(px, inFeatures, pw, pdy, outFeatures, rows, inFeatures, outFeatures, weightInOut,
                inputGradient.IsEmpty ? null : pdx, inFeatures, weightGradient.IsEmpty ? null : pdw, biasGradient.IsEmpty ? null : pdb, accumulateInput);
        }
    }

    /// <summary>
    /// The same backward on strided rows: <c>x</c> rows <paramref name="ldx"/> apart, <c>dy</c> rows
    /// <paramref name="ldy"/> apart (a block of columns of a wider output, e.g. the k part of a fused QKV output),
    /// <c>dx</c> rows <paramref name="lddx"/> apart. A null <paramref name="inputGradient"/>,
    /// <paramref name="weightGradient"/> or <paramref name="biasGradient"/> is skipped. Buffers must stay pinned.
    /// </summary>
    public static unsafe void Backward(float* x, int ldx, float* weight, float* outputGradient, int ldy, int rows, int inFeatures, int outFeatures,
        bool weightInOut, float* inputGradient, int lddx, float* weightGradient, float* biasGradient, bool accumulateInput = false)
    {
        if (rows <= 0) return;
        if (ldx < inFeatures || ldy < outFeatures || lddx < inFeatures) throw new ArgumentException("a row stride is shorter than its row");
        var xs = new ReadOnlySpan<float>(x, checked((rows - 1) * ldx + inFeatures));
        var dy = new ReadOnlySpan<float>(outputGradient, checked((rows - 1) * ldy + outFeatures));
        var w = new ReadOnlySpan<float>(weight, checked(inFeatures * outFeatures));
        if (inputGradient != null)
        {
            var dx = new Span<float>(inputGradient, checked((rows - 1) * lddx + inFeatures));
            if (weightInOut) Gemm.MatMul(false, true, rows, inFeatures, outFeatures, dy, ldy, w, outFeatures, dx, lddx, accumulateInput);
            else Gemm.MatMul(false, false, rows, inFeatures, outFeatures, dy, ldy, w, inFeatures, dx, lddx, accumulateInput);
        }
        if (weightGradient != null)
        {
            var dw = new Span<float>(weightGradient, inFeatures * outFeatures);
            if (weightInOut) Gemm.MatMul(true, false, inFeatures, outFeatures, rows, xs, ldx, dy, ldy, dw, outFeatures, accumulate: true);
            else Gemm.MatMul(true, false, outFeatures, inFeatures, rows, dy, ldy, xs, ldx, dw, inFeatures, accumulate: true);
        }
        if (biasGradient != null) BiasBackward(outputGradient, ldy, rows, new Span<float>(biasGradient, outFeatures));
    }

    /// <summary><c>db += Σ_rows dy</c> for <c>dy: (rows, out)</c>.</summary>
    public static unsafe void BiasBackward(ReadOnlySpan<float> outputGradient, int rows, Span<float> biasGradient)
    {
        if (outputGradient.Length != (long)rows * biasGradient.Length)
            throw new ArgumentException($"outputGradient has {outputGradient.Length} values, expected {rows} x {biasGradient.Length}", nameof(outputGradient));
        fixed (float* pdy = outputGradient) BiasBackward(pdy, biasGradient.Length, rows, biasGradient);
    }

    /// <summary><c>db += Σ_rows dy</c> for <c>dy</c> rows <paramref name="ldy"/> apart.</summary>
    private static unsafe void BiasBackward(float* outputGradient, int ldy, int rows, Span<float> biasGradient)
    {
        int cols = biasGradient.Length;
        float* dy = outputGradient;
        ColumnSums.Accumulate(rows, biasGradient, (start, end, partial) =>
        {
            for (int r = start; r < end; r++)
            {
                float* row = dy + (long)r * ldy;
                for (int c = 0; c < cols; c++) partial[c] += row[c];
            }
        });
    }
}
