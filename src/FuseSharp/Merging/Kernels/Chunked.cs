using System.Runtime.ExceptionServices;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Per-thread F32 buffers for chunk bodies. Each worker thread keeps its own set and reuses it across chunks,
/// passes and tensors, so hot loops allocate nothing; the set only grows (a few chunk sizes per thread).
/// </summary>
public sealed class ChunkScratch
{
    [ThreadStatic]
    private static ChunkScratch? _current;

    private float[][] _buffers = [];

    private ChunkScratch() { }

    /// <summary>Buffer <paramref name="index"/>, first <paramref name="length"/> elements (contents are stale: overwrite before reading).</summary>
    public Span<float> Get(int index, int length)
    {
        if (index >= _buffers.Length) System.Array.Resize(ref _buffers, index + 1);
        var b = _buffers[index];
        if (b is null || b.Length < length) _buffers[index] = b = GC.AllocateUninitializedArray<float>(Math.Max(length, Chunked.Size));
        return b.AsSpan(0, length);
    }

    /// <summary>Buffer <paramref name="index"/> as an array of at least <paramref name="length"/> elements (for hot loops that index several buffers).</summary>
    public float[] Array(int index, int length)
    {
        Get(index, length);
        return _buffers[index];
    }

    /// <summary>Buffers 0..count-1 as arrays of at least <paramref name="length"/> elements; the returned array is reused by the next call.</summary>
    public float[][] Arrays(int count, int length)
    {
        if (_jagged.Length != count) _jagged = new float[count][];
        for (int i = 0; i < count; i++) _jagged[i] = Array(i, length);
        return _jagged;
    }

    private float[][] _jagged = [];

    /// <summary>The calling thread's scratch set.</summary>
    internal static ChunkScratch ForCurrentThread() => _current ??= new ChunkScratch();
}

/// <summary>
/// Parallel loops over a tensor cut into a fixed grid of chunks (<see cref="Size"/> elements, or whole rows).
/// The grid depends only on the tensor's size, never on the thread count, and reductions are summed per chunk
/// and then in chunk order, so every result is bit-identical for any <c>--threads</c>. Cancellation is
/// checked between chunks; an exception in a chunk is rethrown as itself (not wrapped).
/// </summary>
public static class Chunked
{
    /// <summary>Elements per chunk: 64 KiB of F32, so a few inputs' chunks stay in L2.</summary>
    public const int Size = 16384;

    /// <summary>Number of chunks for <paramref name="count"/> elements.</summary>
    public static int CountOf(long count) => (int)((count + Size - 1) / Size);

    /// <summary>Runs <paramref name="body"/>(chunk, start, length, scratch) for every chunk of [0, count).</summary>
    public static void For(long count, CancellationToken ct, Action<int, long, int, ChunkScratch> body)
    {
        int chunks = CountOf(count);
        Run(chunks, ct, (c, s) =>
        {
            long start = (long)c * Size;
            body(c, start, (int)Math.Min(Size, count - start), s);
        });
    }

    /// <summary>
    /// Sums <paramref name="width"/> values over the chunks: <paramref name="body"/> adds chunk (start, length)'s
    /// contribution into its accumulator span (zeroed per chunk); partials are added in chunk order.
    /// </summary>
    public static double[] Reduce(long count, int width, CancellationToken ct, Action<long, int, ChunkScratch, Span<double>> body)
    {
        int chunks = CountOf(count);
        var partial = new double[(long)chunks * width];
        Run(chunks, ct, (c, s) =>
        {
            long start = (long)c * Size;
            body(start, (int)Math.Min(Size, count - start), s, partial.AsSpan(c * width, width));
        });
        return SumPartials(partial, chunks, width);
    }

    /// <summary>Rows per chunk for a row-wise pass over a [rows, cols] matrix (at least one row).</summary>
    public static int RowsPerChunk(long cols) => (int)Math.Max(1, Size / Math.Max(1, cols));

    /// <summary>Runs <paramref name="body"/>(firstRow, rowCount, scratch) over blocks of whole rows (about <see cref="Size"/> elements each).</summary>
    public static void ForRows(long rows, long cols, CancellationToken ct, Action<long, int, ChunkScratch> body)
    {
        int per = RowsPerChunk(cols);
        int blocks = (int)((rows + per - 1) / per);
        Run(blocks, ct, (b, s) =>
        {
            long r0 = (long)b * per;
            body(r0, (int)Math.Min(per, rows - r0), s);
        });
    }

    /// <summary>Row-block reduction: each block adds into its own <paramref name="width"/>-wide accumulator; summed in block order.</summary>
    public static double[] ReduceRows(long rows, long cols, int width, CancellationToken ct, Action<long, int, ChunkScratch, Span<double>> body)
    {
        int per = RowsPerChunk(cols);
        int blocks = (int)((rows + per - 1) / per);
        // Column-wise accumulators are wide: bound the number of partial vectors by merging row blocks into at most 64 groups.
        int groups = Math.Min(blocks, 64);
        int blocksPerGroup = (blocks + groups - 1) / Math.Max(1, groups);
        groups = blocks == 0 ? 0 : (blocks + blocksPerGroup - 1) / blocksPerGroup;
        var partial = new double[(long)groups * width];
        Run(groups, ct, (g, s) =>
        {
            var acc = partial.AsSpan((int)((long)g * width), width);
            for (int b = g * blocksPerGroup; b < Math.Min(blocks, (g + 1) * blocksPerGroup); b++)
            {
                long r0 = (long)b * per;
                body(r0, (int)Math.Min(per, rows - r0), s, acc);
            }
        });
        return SumPartials(partial, groups, width);
    }

    /// <summary>Runs <paramref name="body"/>(item) for items 0..count-1 in parallel (no scratch), rethrowing the first failure as itself.</summary>
    public static void ForEach(int count, CancellationToken ct, Action<int> body) => Run(count, ct, (i, _) => body(i));

    private static double[] SumPartials(double[] partial, int chunks, int width)
    {
        var total = new double[width];
        for (int c = 0; c < chunks; c++)
            for (int j = 0; j < width; j++) total[j] += partial[(long)c * width + j];
        return total;
    }

    private static void Run(int items, CancellationToken ct, Action<int, ChunkScratch> body)
    {
        if (items == 0) return;
        ct.ThrowIfCancellationRequested();
        if (items == 1 || Parallelism.MaxThreads == 1)
        {
            var s = ChunkScratch.ForCurrentThread();
            for (int i = 0; i < items; i++)
            {
                ct.ThrowIfCancellationRequested();
                body(i, s);
            }
            return;
        }
        var options = new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads, CancellationToken = ct };
        try
        {
            Parallel.For(0, items, options,
                ChunkScratch.ForCurrentThread,
                (i, state, s) =>
                {
                    if (!ct.IsCancellationRequested) body(i, s);
                    return s;
                },
                _ => { });
        }
        catch (AggregateException e)
        {
            var first = e.Flatten().InnerExceptions.FirstOrDefault(x => x is not OperationCanceledException) ?? e.InnerExceptions[0];
            ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
        ct.ThrowIfCancellationRequested();
    }
}

/// <summary>
/// The pieces of at most <see cref="Chunked.Size"/> elements that cover [start, start + length), for
/// <c>foreach (var (pieceStart, pieceLength, offset) in new Segments(start, length))</c> without allocating.
/// </summary>
public readonly struct Segments(long start, long length)
{
    public Enumerator GetEnumerator() => new(start, length);

    public struct Enumerator(long start, long length)
    {
        private long _offset = -Chunked.Size;

        public readonly (long Start, int Length, long Offset) Current =>
            (start + _offset, (int)Math.Min(Chunked.Size, length - _offset), _offset);

        public bool MoveNext()
        {
            _offset += Chunked.Size;
            return _offset < length;
        }
    }
}
