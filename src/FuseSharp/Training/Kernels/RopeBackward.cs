using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of rotary position embedding in the Hugging Face "rotate_half" layout. The forward rotates, within the
/// first <c>rotaryDim</c> dimensions of each head, the pair <c>(i, i + h)</c>, <c>h = rotaryDim/2</c>:
/// <c>y[i] = x[i]·cos − x[i+h]·sin</c>, <c>y[i+h] = x[i+h]·cos + x[i]·sin</c>. A rotation is orthogonal, so the
/// gradient is the inverse rotation (sin negated):
/// <code>
/// dx[i] = dy[i]·cos + dy[i+h]·sin,   dx[i+h] = dy[i+h]·cos − dy[i]·sin
/// </code>
/// Dimensions past <c>rotaryDim</c> (GPT-NeoX partial rotary) pass the gradient through. cos and sin are the ones
/// the forward used (any attention factor folded in scales them, and the same scaling carries to the gradient).
/// </summary>
public static class RopeBackward
{
    /// <summary>Turns dL/dy into dL/dx in place for one token <c>(heads, headDim)</c>.</summary>
    /// <param name="gradient">dL/dy of one token's heads; becomes dL/dx.</param>
    /// <param name="headDim">Dimensions per head.</param>
    /// <param name="rotaryDim">Rotated dimensions per head (even, ≤ headDim).</param>
    /// <param name="cos">cos of the token's angles <c>(rotaryDim/2)</c>.</param>
    /// <param name="sin">sin of the token's angles <c>(rotaryDim/2)</c>.</param>
    public static void Apply(Span<float> gradient, int headDim, int rotaryDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        Check(gradient.Length, headDim, rotaryDim, cos.Length, sin.Length);
        int h = rotaryDim / 2;
        for (int start = 0; start < gradient.Length; start += headDim)
        {
            var head = gradient.Slice(start, rotaryDim);
            for (int i = 0; i < h; i++)
            {
                float a = head[i], b = head[i + h];
                head[i] = a * cos[i] + b * sin[i];
                head[i + h] = b * cos[i] - a * sin[i];
            }
        }
    }

    /// <summary>
    /// <see cref="Apply"/> for <c>N</c> tokens <c>(N, heads·headDim)</c> (rows may be wider, <paramref name="rowStride"/>)
    /// with per-token tables <c>cos, sin: (N, rotaryDim/2)</c>.
    /// </summary>
    public static unsafe void ApplyRows(Span<float> gradient, int rows, int rowStride, int width, int headDim, int rotaryDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int h = rotaryDim / 2;
        if (rows < 0 || rowStride < width || (rows > 0 && (long)(rows - 1) * rowStride + width > gradient.Length))
            throw new ArgumentException($"gradient of {gradient.Length} values cannot hold {rows} rows of {width} with stride {rowStride}", nameof(gradient));
        if (cos.Length != (long)rows * h || sin.Length != (long)rows * h) throw new ArgumentException($"cos/sin tables must hold {rows} x {h} values", nameof(cos));
        Check(width, headDim, rotaryDim, h, h);
        fixed (float* pg = gradient, pc = cos, ps = sin)
        {
            float* g = pg, c = pc, s = ps;
            ParallelRows.For(rows, width, (start, end) =>
            {
                for (int r = start; r < end; r++)
                    Apply(new Span<float>(g + (long)r * rowStride, width), headDim, rotaryDim, new ReadOnlySpan<float>(c + (long)r * h, h), new ReadOnlySpan<float>(s + (long)r * h, h));
            });
        }
    }

    private static void Check(int width, int headDim, int rotaryDim, int cosLength, int sinLength)
    {
        if (headDim <= 0 || width % headDim != 0) throw new ArgumentException($"{width} values are not a whole number of heads of {headDim}", nameof(headDim));
        if (rotaryDim <= 0 || rotaryDim > headDim || rotaryDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(rotaryDim), $"rotaryDim {rotaryDim} must be even and in (0, {headDim}]");
        if (cosLength != rotaryDim / 2 || sinLength != rotaryDim / 2) throw new ArgumentException($"cos and sin need {rotaryDim / 2} values", nameof(cosLength));
    }
}
