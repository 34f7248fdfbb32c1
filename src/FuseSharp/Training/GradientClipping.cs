using System.Numerics.Tensors;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>
/// Global-norm gradient clipping, as <c>torch.nn.utils.clip_grad_norm_</c>: the L2 norm over every gradient
/// element, and when it exceeds <c>maxNorm</c> every gradient is multiplied by <c>maxNorm / (norm + 1e-6)</c>.
/// The sum of squares is accumulated in float64 over fixed chunks in a fixed order, so the norm does not depend on
/// the thread count.
/// </summary>
public static class GradientClipping
{
    private const int Chunk = 1 << 16;

    /// <summary>The L2 norm of all elements of <paramref name="gradients"/> (NaN or ∞ when any element is).</summary>
    public static unsafe double GlobalNorm(TensorArena gradients)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        // The alignment padding between tensors is zero, so the whole buffer can be reduced at once.
        long total = gradients.TotalLength;
        int chunks = (int)((total + Chunk - 1) / Chunk);
        var partial = new double[chunks];
        float* g = gradients.Pointer;
        void Run(int c)
        {
            long start = (long)c * Chunk;
            int n = (int)Math.Min(Chunk, total - start);
            var span = new ReadOnlySpan<float>(g + start, n);
            double s = 0;
            for (int i = 0; i < n; i += 1024)
            {
                var block = span.Slice(i, Math.Min(1024, n - i));
                s += TensorPrimitives.SumOfSquares(block);
            }
            partial[c] = s;
        }
        if (Parallelism.MaxThreads <= 1 || chunks <= 1) { for (int c = 0; c < chunks; c++) Run(c); }
        else Parallel.For(0, chunks, Parallelism.Options, Run);
        double sum = 0;
        foreach (var p in partial) sum += p;
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Computes the global norm and, when <paramref name="maxNorm"/> is positive and the norm exceeds it, scales the
    /// gradients down. Returns the norm before clipping (what the Trainer logs as <c>grad_norm</c>).
    /// A non-finite norm is returned without touching the gradients.
    /// </summary>
    public static unsafe double ClipByGlobalNorm(TensorArena gradients, double maxNorm)
    {
        double norm = GlobalNorm(gradients);
        if (maxNorm <= 0 || !double.IsFinite(norm)) return norm;
        // torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, clamped to 1.
        float coef = (float)maxNorm / ((float)norm + 1e-6f);
        if (coef >= 1f) return norm;
        long total = gradients.TotalLength;
        float* g = gradients.Pointer;
        int chunks = (int)((total + Chunk - 1) / Chunk);
        void Scale(int c)
        {
            long start = (long)c * Chunk;
            var span = new Span<float>(g + start, (int)Math.Min(Chunk, total - start));
            TensorPrimitives.Multiply(span, coef, span);
        }
        if (Parallelism.MaxThreads <= 1 || chunks <= 1) { for (int c = 0; c < chunks; c++) Scale(c); }
        else Parallel.For(0, chunks, Parallelism.Options, Scale);
        return norm;
    }
}
