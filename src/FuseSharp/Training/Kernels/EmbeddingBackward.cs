using System.Numerics.Tensors;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of a table lookup <c>y[i, :] = W[ids[i], :]</c> (token embeddings; with positions as ids, GPT-2's learned
/// position table): <c>dW[ids[i], :] += dy[i, :]</c>. Tokens are visited in order for every column block, so a row
/// hit by several tokens sums them in the same order on any thread count.
/// <para><c>nn.Embedding(padding_idx=p)</c> (the Llama family with a <c>pad_token_id</c>) passes no gradient to
/// row p from the lookup; pass <c>paddingIndex</c> = p for those models, −1 otherwise.</para>
/// </summary>
public static class EmbeddingBackward
{
    private const int ColumnBlock = 256;

    /// <param name="ids">Looked-up rows <c>(N)</c>.</param>
    /// <param name="outputGradient">dL/dy <c>(N, C)</c>.</param>
    /// <param name="weightGradient">dL/dW <c>(V, C)</c>, accumulated into.</param>
    /// <param name="columns">C.</param>
    /// <param name="paddingIndex">Row that receives no gradient, or −1.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id outside [0, V).</exception>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> outputGradient, Span<float> weightGradient, int columns, int paddingIndex = -1)
    {
        if (columns <= 0) throw new ArgumentOutOfRangeException(nameof(columns));
        int n = ids.Length;
        if (outputGradient.Length != (long)n * columns) throw new ArgumentException($"outputGradient has {outputGradient.Length} values, expected {n} x {columns}", nameof(outputGradient));
        if (weightGradient.Length % columns != 0) throw new ArgumentException($"weightGradient has {weightGradient.Length} values, not a whole number of rows of {columns}", nameof(weightGradient));
        int rows = weightGradient.Length / columns;
        foreach (var id in ids)
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} outside the table of {rows} rows");
        int blocks = (columns + ColumnBlock - 1) / ColumnBlock;
        unsafe
        {
            fixed (int* pi = ids)
            fixed (float* pdy = outputGradient, pdw = weightGradient)
            {
                int* I = pi;
                float* dy = pdy, dw = pdw;
                ParallelRows.For(blocks, (long)n * ColumnBlock, (start, end) =>
                {
                    for (int blk = start; blk < end; blk++)
                    {
                        int c0 = blk * ColumnBlock, len = Math.Min(ColumnBlock, columns - c0);
                        for (int i = 0; i < n; i++)
                        {
                            if (I[i] == paddingIndex) continue;
                            var dst = new Span<float>(dw + (long)I[i] * columns + c0, len);
                            TensorPrimitives.Add(dst, new ReadOnlySpan<float>(dy + (long)i * columns + c0, len), dst);
                        }
                    }
                });
            }
        }
    }
}
