namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Splits row-wise kernel work over <see cref="Parallelism.MaxThreads"/> threads: inline when the work is small
/// (a parallel dispatch costs microseconds) or one thread is allowed, otherwise in a few chunks per thread so that
/// uneven rows (causal attention) still balance. Results never depend on the split: every row is computed by the
/// same code whichever chunk it falls in.
/// </summary>
public static class ParallelRows
{
    /// <summary>Below this many multiply-adds a kernel runs on the calling thread.</summary>
    private const long InlineWork = 1 << 16;

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>).</summary>
    /// <param name="count">Number of items.</param>
    /// <param name="workPerItem">Rough cost of one item in multiply-adds (decides whether to go parallel).</param>
    /// <param name="body">Processes items [start, end).</param>
    public static void For(int count, long workPerItem, Action<int, int> body)
    {
        if (count <= 0) return;
        int threads = Parallelism.MaxThreads;
        if (threads <= 1 || count == 1 || count * Math.Max(1, workPerItem) < InlineWork)
        {
            body(0, count);
            return;
        }
        int chunks = Math.Min(count, threads * 4);
        Parallel.For(0, chunks, Parallelism.Options, c =>
        {
            int start = (int)((long)count * c / chunks);
            int end = (int)((long)count * (c + 1) / chunks);
            if (end > start) body(start, end);
        });
    }
}
