using FuseSharp.Tensors;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Parameter gradients that sum over rows (a bias, a norm weight): <c>destination[c] += Σ_r f(r, c)</c>. The rows
/// are cut into a fixed number of chunks that depends only on the row count, each chunk sums into its own float64
/// partial, and the partials are added in chunk order, so the result is the same on any number of threads
/// (the resume guarantee needs bit-identical gradients from run to run).
/// </summary>
internal static class ColumnSums
{
    private const int MaxChunks = 32;
    private const int MinRowsPerChunk = 16;

    /// <summary>A chunk's contribution: add <c>f(r, ·)</c> for rows [start, end) into <c>partial</c> (length = columns).</summary>
    public delegate void ChunkBody(int start, int end, Span<double> partial);

    /// <summary>Runs <paramref name="body"/> over row chunks and adds the column totals to <paramref name="destination"/>.</summary>
    public static void Accumulate(int rows, Span<float> destination, ChunkBody body)
    {
        int cols = destination.Length;
        if (rows <= 0 || cols == 0) return;
        int chunks = Math.Clamp(rows / MinRowsPerChunk, 1, MaxChunks);
        var partial = new double[chunks * cols];
        void Run(int c)
        {
            int start = (int)((long)rows * c / chunks), end = (int)((long)rows * (c + 1) / chunks);
            body(start, end, partial.AsSpan(c * cols, cols));
        }
        if (chunks == 1 || Parallelism.MaxThreads <= 1) { for (int c = 0; c < chunks; c++) Run(c); }
        else Parallel.For(0, chunks, Parallelism.Options, Run);
        for (int j = 0; j < cols; j++)
        {
            double s = 0;
            for (int c = 0; c < chunks; c++) s += partial[c * cols + j];
            destination[j] += (float)s;
        }
    }
}
