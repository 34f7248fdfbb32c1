using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// WIDEN (MergeLLM <c>widen_merging</c>, arXiv 2408.03092; spec §2.14), which merges fine-tuned and continually
/// pre-trained models alike by weight disentanglement. For a 2-D tensor W (out × in; the input embedding is
/// transposed so its columns are tokens), per column c and model i: magnitude m = ‖W[:, c]‖ and direction
/// D = W/m; the changes against the base ΔM = |m_i − m_b| and ΔD = 1 − cos(D_i, D_b) are ranked within each
/// model (stable ascending sort, rank j/n); each ranking is scored across models by a softmax, and entries
/// above <c>above_average_value_ratio</c> × the model's mean rank get <c>score_calibration_value</c>; the column
/// weight is 0.5 (S^M + S^D) and <c>θ = θ_b + Σ_i Δ_i ⊙ w_i[column]</c>, not normalised. 1-D tensors (norms,
/// biases) are scored on the raw |Δ_i| values instead of ranks. All statistics are per-column reductions, so the
/// merge streams in two passes. The reference divides by the column norm without an epsilon (a zero column gives
/// NaN); here a zero column's cosine is 0 (torch's eps rule for zero vectors) and the guard is reported.
/// Inputs with different vocabulary sizes are aligned beforehand (spec §2.14.6): every embedding is padded to the
/// largest vocabulary with rows equal to its own mean row.
/// </summary>
public sealed class Widen : IMergeMethod
{
    public string Name => "widen";

    public string PrettyName => "WIDEN";

    public string? Reference => "https://arxiv.org/abs/2408.03092";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.PadToLargestWithMean;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Number("above_average_value_ratio", 1.0, "entries whose rank exceeds this × the mean rank get the calibration value"),
        ParameterDef.Number("score_calibration_value", 1.0, "score given to the above-average entries"),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 1);

    /// <summary>
    /// 2-D tensors: the pooled FP64 group sums of the column statistics (or the per-row statistics of a transposed
    /// embedding), their total, the threads' F32 row accumulators, and the per-column arrays of changes, ranks, scores
    /// and weights (about 64 bytes per column and model).
    /// </summary>
    public long WorkspaceBytes(TensorTask task)
    {
        if (task.Shape.Rank != 2) return 0;
        int m = task.Inputs.Count, width = 1 + 2 * m;
        long rows = task.Shape[0], cols = task.Shape[1];
        long n = task.IsInputEmbedding ? rows : cols;
        long statistics = task.IsInputEmbedding
            ? n * width * 8
            : (StatisticsGroups(rows, cols, m) + 1) * cols * width * 8 + Parallelism.MaxThreads * cols * width * 4L;
        return statistics + n * m * 64L;
    }

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        double ratio = task.Parameters.Number("above_average_value_ratio");
        double calibration = task.Parameters.Number("score_calibration_value");
        if (task.Shape.Rank == 2) MergeMatrix(ctx, ratio, calibration);
        else MergeVector(ctx, ratio, calibration);
    }

    private static unsafe void MergeMatrix(TensorMergeContext ctx, double ratio, double calibration)
    {
        var task = ctx.Task;
        int m = task.Inputs.Count;
        long rows = task.Shape[0], cols = task.Shape[1];
        bool transposed = task.IsInputEmbedding;
        long n = transposed ? rows : cols;
        // Per "column" (a storage column, or a storage row when transposed): Σ b², Σ θ_i², Σ θ_i·b.
        int width = 1 + 2 * m;
        double[] stats;
        if (transposed)
        {
            stats = new double[n * width];
            var deltas = MethodHelpers.Deltas(task);
            Chunked.ForRows(rows, cols, ctx.Cancellation, (r0, count, sc) =>
            {
                for (long r = r0; r < r0 + count; r++)
                    foreach (var (start, len, _) in new Segments(r * cols, cols))
                    {
                        deltas(start, len, sc);
                        var b = sc.Get(m, len);
                        stats[r * width] += TensorPrimitives.SumOfSquares(b);
                        for (int i = 0; i < m; i++)
                        {
                            var x = sc.Get(i, len);
                            TensorPrimitives.Add(x, b, x); // back to θ_i
                            stats[r * width + 1 + i] += TensorPrimitives.SumOfSquares(x);
                            stats[r * width + 1 + m + i] += TensorPrimitives.Dot(x, b);
                        }
                    }
            });
        }
        else stats = ColumnStatistics(task, rows, cols, ctx.Cancellation);

        // Magnitude and direction changes, ranked within each model.
        var dm = new float[m][];
        var dd = new float[m][];
        int zeroColumns = 0;
        for (int i = 0; i < m; i++)
        {
            dm[i] = new float[n];
            dd[i] = new float[n];
            for (long c = 0; c < n; c++)
            {
                double mb = Math.Sqrt(stats[c * width]), mi = Math.Sqrt(stats[c * width + 1 + i]);
                double dot = stats[c * width + 1 + m + i];
                dm[i][c] = (float)Math.Abs(mi - mb);
                double denom = mi * mb;
                if (denom == 0) zeroColumns++;
                dd[i][c] = (float)(1 - (denom == 0 ? 0 : dot / denom));
            }
        }
        if (zeroColumns > 0) ctx.Diagnostics.Guard($"{zeroColumns} zero columns (norm 0): direction change taken as 1 (cosine 0)");
        var sM = Score(Ranks(dm), ratio, calibration);
        var sD = Score(Ranks(dd), ratio, calibration);
        var w = new float[m][];
        for (int i = 0; i < m; i++)
        {
            w[i] = new float[n];
            for (long c = 0; c < n; c++) w[i][c] = (float)(0.5 * (sM[i][c] + sD[i][c]));
        }
        ctx.Diagnostics.EffectiveWeights(w.Select(x => x.Average(v => (double)v)).ToList());

        // θ = θ_b + Σ Δ_i ⊙ w_i[column], one fused pass over the raw inputs. The statistics pass has already screened
        // every input for NaN/Inf, so stored BF16 inputs are decoded inside the kernel without a screening read. A block
        // of whole rows (at most one chunk, contiguous in the output) is written with one call, not a call per row: a
        // row of 1024 columns is 2 KB of BF16, and a write per row cost more than the arithmetic.
        var raw = StoredBFloat16.Of(task);
        Chunked.ForRows(rows, cols, ctx.Cancellation, (r0, count, sc) =>
        {
            var x = new float[m][];
            Span<nint> xs = stackalloc nint[m];
            long blockStart = r0 * cols, blockLength = count * cols;
            bool whole = blockLength <= Chunked.Size;
            var o = sc.Array(m + 1, whole ? (int)blockLength : Chunked.Size);
            for (long r = r0; r < r0 + count; r++)
                foreach (var (start, len, off) in new Segments(r * cols, cols))
                {
                    var segment = o.AsSpan(whole ? (int)(start - blockStart) : 0, len);
                    int wOffset = transposed ? (int)r : (int)off, step = transposed ? 0 : 1;
                    if (raw is not null)
                    {
                        WeightedDeltasOfBFloat16(raw.Bits(start, len, xs), xs, w, wOffset, step, segment);
                    }
                    else
                    {
                        var b = sc.Array(m, len);
                        task.Base!.Source.Read(start, b.AsSpan(0, len));
                        for (int i = 0; i < m; i++)
                        {
                            x[i] = sc.Array(i, len);
                            task.Inputs[i].Source.Read(start, x[i].AsSpan(0, len));
                        }
                        WeightedDeltas(b, x, w, wOffset, step, segment);
                    }
                    if (!whole) ctx.Output.Write(start, segment);
                }
            if (whole) ctx.Output.Write(blockStart, o.AsSpan(0, (int)blockLength));
        });
    }

    /// <summary>
    /// Per column c of a [rows, cols] matrix: Σ b², then Σ θ_i² and Σ θ_i·b per model, laid out [c * (1 + 2m) + stat].
    /// Rows are split into a fixed number of groups (by shape only, so the sums do not depend on the thread count);
    /// each group accumulates rows in F32 with TensorPrimitives, flushing into FP64 every 16 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // Not setup: the group sum at its end adds groups × cols × (1 + 2m) values per tensor, run once per tensor (tier-0 / OSR otherwise).
    private static unsafe double[] ColumnStatistics(TensorTask task, long rows, long cols, CancellationToken ct)
    {
        int m = task.Inputs.Count, width = 1 + 2 * m;
        int groups = StatisticsGroups(rows, cols, m);
        var raw = StoredBFloat16.Of(task);
        long groupLength = cols * width;
        // All groups' FP64 sums in one pooled array, [group][stat][column]: one buffer reused tensor after tensor rather
        // than large-object garbage per tensor.
        var partial = ArrayPool<double>.Shared.Rent((int)(groups * groupLength));
        Array.Clear(partial, 0, (int)(groups * groupLength));
        Chunked.ForEach(groups, ct, g =>
        {
            long r0 = rows * g / groups, r1 = rows * (g + 1) / groups;
            var acc = partial.AsSpan((int)(g * groupLength), (int)groupLength);
            var f = new float[width][];
            for (int k = 0; k < width; k++) f[k] = new float[cols];
            var sc = ChunkScratch.ForCurrentThread();
            var x = new float[m][];
            if (raw is not null)
            {
                // Stored BF16, decoded inside the kernel and screened for NaN/Inf through the sums: blocks of FlushRows rows
                // swept a column block at a time, so the block's partial sums stay in L1 across its rows (each column still
                // adds its rows in order, flushing after the same rows: the same sums).
                int block = StatisticsColumnBlock(width);
                Span<nint> xs = stackalloc nint[m];
                for (long r = r0; r < r1; r += FlushRows)
                {
                    long rEnd = Math.Min(r + FlushRows, r1);
                    for (long c0 = 0; c0 < cols; c0 += block)
                    {
                        int len = (int)Math.Min(block, cols - c0);
                        for (long rr = r; rr < rEnd; rr++) AccumulateStatisticsOfBFloat16(raw.Bits(rr * cols + c0, len, xs), xs, f, (int)c0, len);
                    }
                    for (int k = 0; k < width; k++)
                    {
                        AddWidened(f[k], acc.Slice((int)(k * cols), (int)cols));
                        Array.Clear(f[k]);
                    }
                }
                return;
            }
            int pending = 0;
            for (long r = r0; r < r1; r++)
            {
                foreach (var (start, len, off) in new Segments(r * cols, cols))
                {
                    var b = sc.Array(m, len);
                    task.Base!.Source.Read(start, b.AsSpan(0, len));
                    for (int i = 0; i < m; i++)
                    {
                        x[i] = sc.Array(i, len);
                        task.Inputs[i].Source.Read(start, x[i].AsSpan(0, len));
                    }
                    AccumulateColumnStatistics(b, x, f, (int)off, len);
                }
                if (++pending == FlushRows || r == r1 - 1)
                {
                    for (int k = 0; k < width; k++)
                    {
                        AddWidened(f[k], acc.Slice((int)(k * cols), (int)cols));
                        Array.Clear(f[k]);
                    }
                    pending = 0;
                }
            }
        });
        // Groups summed in order into the [column * width + stat] layout the caller reads.
        var total = new double[cols * width];
        for (int g = 0; g < groups; g++)
            for (int k = 0; k < width; k++)
            {
                var pk = partial.AsSpan((int)(g * groupLength + k * cols), (int)cols);
                for (int c = 0; c < cols; c++) total[c * width + k] += pk[c];
            }
        ArrayPool<double>.Shared.Return(partial);
        // Raw reads skip the per-read screening: a NaN or infinity in any input makes its sums of squares non-finite
        // (squares are never negative, so infinities cannot cancel). Only then are the inputs read through the
        // screening path, which names the first bad element (a finite overflow passes, as it did before).
        if (raw is not null && !total.All(double.IsFinite)) raw.ReadChecked(ct);
        return total;
    }

    /// <summary>Rows a group accumulates in F32 before adding the sums into FP64.</summary>
    private const int FlushRows = 16;

    /// <summary>Columns per block of the BF16 statistics sweep: a power of two (whole blocks for the usual widths) whose 1 + 2m partial-sum rows take at most 16 KB.</summary>
    private static int StatisticsColumnBlock(int width) => Math.Max(64, (int)BitOperations.RoundUpToPowerOf2((uint)(4096 / width + 1)) / 2);

    /// <summary>
    /// <see cref="AccumulateColumnStatistics"/> of <paramref name="length"/> BF16 elements of the base <paramref name="b"/>
    /// and the inputs <paramref name="xs"/> into columns offset.. of <paramref name="f"/>, in one pass with the base decoded once per vector: per
    /// column, <c>f[0] += b·b</c>, then per input <c>f[1+i] += x_i·x_i</c> and <c>f[1+m+i] += x_i·b</c> (multiply, then
    /// add), the same operations in the same order, so the same bits.
    /// </summary>
    internal static unsafe void AccumulateStatisticsOfBFloat16(ushort* b, ReadOnlySpan<nint> xs, float[][] f, int offset, int length)
    {
        int m = xs.Length;
        bool ok = f.Length == 1 + 2 * m;
        for (int k = 0; ok && k < f.Length; k++) ok = f[k].Length >= offset + length;
        if (!ok) throw new ArgumentException("f needs 1 + 2m rows of offset + length", nameof(f));
        ushort** x = stackalloc ushort*[m];
        for (int i = 0; i < m; i++) x[i] = (ushort*)xs[i];
        ref float f0 = ref MemoryMarshal.GetArrayDataReference(f[0]);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; j <= length - 8; j += 8)
            {
                nuint c = (nuint)(offset + j);
                var vb = BFloat16Conversion.ToSingle8(ref b[j]);
                (vb * vb + Vector256.LoadUnsafe(ref f0, c)).StoreUnsafe(ref f0, c);
                for (int i = 0; i < m; i++)
                {
                    var vx = BFloat16Conversion.ToSingle8(ref x[i][j]);
                    ref float xx = ref MemoryMarshal.GetArrayDataReference(f[1 + i]);
                    ref float xb = ref MemoryMarshal.GetArrayDataReference(f[1 + m + i]);
                    (vx * vx + Vector256.LoadUnsafe(ref xx, c)).StoreUnsafe(ref xx, c);
                    (vx * vb + Vector256.LoadUnsafe(ref xb, c)).StoreUnsafe(ref xb, c);
                }
            }
        for (; j < length; j++)
        {
            int c = offset + j;
            float vb = BFloat16Conversion.ToSingle(b[j]);
            f[0][c] = vb * vb + f[0][c];
            for (int i = 0; i < m; i++)
            {
                float vx = BFloat16Conversion.ToSingle(x[i][j]);
                f[1 + i][c] = vx * vx + f[1 + i][c];
                f[1 + m + i][c] = vx * vb + f[1 + m + i][c];
            }
        }
    }

    /// <summary>
    /// <see cref="WeightedDeltas"/> of <c>output.Length</c> BF16 elements of the base <paramref name="b"/> and the inputs
    /// <paramref name="xs"/>, in one pass: per element <c>o = b</c>, then for each input in order <c>o = (x_i − b) · w_i[offset + step·j] + o</c>
    /// (the same roundings), kept in a register instead of re-read from <paramref name="output"/> for each input.
    /// </summary>
    internal static unsafe void WeightedDeltasOfBFloat16(ushort* b, ReadOnlySpan<nint> xs, float[][] w, int offset, int step, Span<float> output)
    {
        int m = xs.Length, length = output.Length;
        bool ok = w.Length == m;
        for (int i = 0; ok && i < m; i++) ok = w[i].Length >= offset + (step == 0 ? 1 : length);
        if (!ok) throw new ArgumentException("w needs m rows of offset + length (step 1) or offset + 1", nameof(w));
        ushort** x = stackalloc ushort*[m];
        for (int i = 0; i < m; i++) x[i] = (ushort*)xs[i];
        ref float ro = ref MemoryMarshal.GetReference(output);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; j <= length - 8; j += 8)
            {
                var vb = BFloat16Conversion.ToSingle8(ref b[j]);
                var o = vb;
                for (int i = 0; i < m; i++)
                {
                    ref float rw = ref MemoryMarshal.GetArrayDataReference(w[i]);
                    var vw = step == 0 ? Vector256.Create(Unsafe.Add(ref rw, offset)) : Vector256.LoadUnsafe(ref rw, (nuint)(offset + j));
                    o = (BFloat16Conversion.ToSingle8(ref x[i][j]) - vb) * vw + o;
                }
                o.StoreUnsafe(ref ro, (nuint)j);
            }
        for (; j < length; j++)
        {
            float vb = BFloat16Conversion.ToSingle(b[j]), o = vb;
            for (int i = 0; i < m; i++) o = (BFloat16Conversion.ToSingle(x[i][j]) - vb) * w[i][offset + step * j] + o;
            Unsafe.Add(ref ro, j) = o;
        }
    }

    /// <summary>
    /// One row segment's contribution to the column statistics, with <c>b</c> the base and <c>x_i</c> the inputs
    /// (first <paramref name="length"/> elements) and column offset <paramref name="offset"/>: <c>f[0] += b·b</c>,
    /// then per input <c>f[1+i] += x_i·x_i</c> and <c>f[1+m+i] += x_i·b</c>, element-wise (multiply, then add: the
    /// roundings of <see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>);
    /// both sums of an input in one pass over it.
    /// </summary>
    internal static void AccumulateColumnStatistics(float[] b, float[][] x, float[][] f, int offset, int length)
    {
        int m = x.Length;
        bool ok = f.Length == 1 + 2 * m && b.Length >= length;
        for (int k = 0; ok && k < f.Length; k++) ok = f[k].Length >= offset + length && (k == 0 || k > m || x[k - 1].Length >= length);
        if (!ok) throw new ArgumentException("f needs 1 + 2m rows of offset + length, b and x length elements", nameof(f));
        AccumulateSquares(b, f[0].AsSpan(offset, length));
        for (int i = 0; i < m; i++)
            AccumulateInputStatistics(x[i], b, f[1 + i].AsSpan(offset, length), f[1 + m + i].AsSpan(offset, length));
    }

    /// <summary><c>f[j] = b[j]·b[j] + f[j]</c> for j &lt; f.Length.</summary>
    private static void AccumulateSquares(ReadOnlySpan<float> b, Span<float> f)
    {
        if (b.Length < f.Length) throw new ArgumentException("b shorter than f", nameof(b));
        ref float rb = ref MemoryMarshal.GetReference(b);
        ref float rf = ref MemoryMarshal.GetReference(f);
        int j = 0, length = f.Length;
        if (Vector256.IsHardwareAccelerated)
            for (; j <= length - 8; j += 8)
            {
                var vb = Vector256.LoadUnsafe(ref rb, (nuint)j);
                (vb * vb + Vector256.LoadUnsafe(ref rf, (nuint)j)).StoreUnsafe(ref rf, (nuint)j);
            }
        for (; j < length; j++) Unsafe.Add(ref rf, j) = Unsafe.Add(ref rb, j) * Unsafe.Add(ref rb, j) + Unsafe.Add(ref rf, j);
    }

    /// <summary>
    /// One input's column statistics over <c>xx.Length</c> elements: <c>xx[j] = x[j]·x[j] + xx[j]</c> and
    /// <c>xb[j] = x[j]·b[j] + xb[j]</c>.
    /// </summary>
    private static void AccumulateInputStatistics(ReadOnlySpan<float> x, ReadOnlySpan<float> b, Span<float> xx, Span<float> xb)
    {
        int length = xx.Length;
        if (x.Length < length || b.Length < length || xb.Length != length) throw new ArgumentException("x, b and xb need xx.Length elements", nameof(x));
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rb = ref MemoryMarshal.GetReference(b);
        ref float rxx = ref MemoryMarshal.GetReference(xx);
        ref float rxb = ref MemoryMarshal.GetReference(xb);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; j <= length - 8; j += 8)
            {
                var vx = Vector256.LoadUnsafe(ref rx, (nuint)j);
                (vx * vx + Vector256.LoadUnsafe(ref rxx, (nuint)j)).StoreUnsafe(ref rxx, (nuint)j);
                (vx * Vector256.LoadUnsafe(ref rb, (nuint)j) + Vector256.LoadUnsafe(ref rxb, (nuint)j)).StoreUnsafe(ref rxb, (nuint)j);
            }
        for (; j < length; j++)
        {
            float vx = Unsafe.Add(ref rx, j);
            Unsafe.Add(ref rxx, j) = vx * vx + Unsafe.Add(ref rxx, j);
            Unsafe.Add(ref rxb, j) = vx * Unsafe.Add(ref rb, j) + Unsafe.Add(ref rxb, j);
        }
    }

    /// <summary>Row groups of <see cref="ColumnStatistics"/>: fixed by the shape (at most 64, about 64 MB of FP64 sums).</summary>
    private static int StatisticsGroups(long rows, long cols, int m) =>
        (int)Math.Clamp(Math.Min(rows, (64L << 20) / Math.Max(1, cols * (1 + 2 * m) * 8)), 1, 64);

    /// <summary><c>acc[c] += (double)f[c]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddWidened(ReadOnlySpan<float> f, Span<double> acc)
    {
        int c = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; c <= f.Length - 8; c += 8)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Create(f.Slice(c, 8)));
                (Vector256.Create(acc.Slice(c, 4)) + lower).CopyTo(acc.Slice(c, 4));
                (Vector256.Create(acc.Slice(c + 4, 4)) + upper).CopyTo(acc.Slice(c + 4, 4));
            }
        for (; c < f.Length; c++) acc[c] += f[c];
    }

    /// <summary>
    /// <c>output = b + Σ_i (x_i − b) ⊙ w_i</c> over the <c>output.Length</c> elements, input by input: for
    /// each i in order <c>output[j] = (x_i[j] − b[j]) · w_i[offset + step·j] + output[j]</c> (step 0: one weight per
    /// input, step 1: a weight per column) — the roundings of a subtraction into a task vector followed by
    /// <see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>,
    /// without writing the task vectors.
    /// </summary>
    internal static void WeightedDeltas(float[] b, float[][] x, float[][] w, int offset, int step, Span<float> output)
    {
        int length = output.Length;
        if (b.Length < length) throw new ArgumentException("buffers too short", nameof(b));
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i].Length < length || w[i].Length < offset + (step == 0 ? 1 : length)) throw new ArgumentException("buffers too short", nameof(w));
            // The first input adds onto the base itself.
            WeightedDelta(x[i], b, i == 0 ? b : output, w[i].AsSpan(offset), step, output);
        }
        if (x.Length == 0) new ReadOnlySpan<float>(b, 0, length).CopyTo(output);
    }

    /// <summary>
    /// One input's term over <c>output.Length</c> elements: <c>output[j] = (x[j] − b[j]) · w[step·j] + acc[j]</c>
    /// (<paramref name="acc"/> may be <paramref name="output"/> or the base).
    /// </summary>
    private static void WeightedDelta(ReadOnlySpan<float> x, ReadOnlySpan<float> b, ReadOnlySpan<float> acc, ReadOnlySpan<float> w, int step, Span<float> output)
    {
        int length = output.Length;
        if (x.Length < length || b.Length < length || acc.Length < length || w.Length < (step == 0 ? 1 : length))
            throw new ArgumentException("x, b, acc (and w per column) need output.Length elements", nameof(x));
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float rb = ref MemoryMarshal.GetReference(b);
        ref float rw = ref MemoryMarshal.GetReference(w);
        ref float racc = ref MemoryMarshal.GetReference(acc);
        ref float ro = ref MemoryMarshal.GetReference(output);
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            if (step == 0)
            {
                var vw = Vector256.Create(rw);
                for (; j <= length - 8; j += 8)
                    ((Vector256.LoadUnsafe(ref rx, (nuint)j) - Vector256.LoadUnsafe(ref rb, (nuint)j)) * vw + Vector256.LoadUnsafe(ref racc, (nuint)j)).StoreUnsafe(ref ro, (nuint)j);
            }
            else
                for (; j <= length - 8; j += 8)
                    ((Vector256.LoadUnsafe(ref rx, (nuint)j) - Vector256.LoadUnsafe(ref rb, (nuint)j)) * Vector256.LoadUnsafe(ref rw, (nuint)j) + Vector256.LoadUnsafe(ref racc, (nuint)j)).StoreUnsafe(ref ro, (nuint)j);
        }
        for (; j < length; j++)
            Unsafe.Add(ref ro, j) = (Unsafe.Add(ref rx, j) - Unsafe.Add(ref rb, j)) * Unsafe.Add(ref rw, step * j) + Unsafe.Add(ref racc, j);
    }

    private static void MergeVector(TensorMergeContext ctx, double ratio, double calibration)
    {
        var task = ctx.Task;
        int m = task.Inputs.Count;
        var deltas = MethodHelpers.Deltas(task);
        var sums = Chunked.Reduce(ctx.Count, m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            for (int i = 0; i < m; i++) acc[i] += TensorPrimitives.SumOfMagnitudes(sc.Get(i, length));
        });
        var threshold = sums.Select(s => s / ctx.Count * ratio).ToArray();
        var weightSums = Chunked.Reduce(ctx.Count, m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            var b = sc.Get(m, length);
            var ds = sc.Arrays(m, length);
            Span<double> e = stackalloc double[m];
            for (int j = 0; j < length; j++)
            {
                // Softmax over models of the raw |Δ| values, then calibration above the model's mean.
                double max = double.NegativeInfinity, sum = 0;
                for (int i = 0; i < m; i++) max = Math.Max(max, Math.Abs(ds[i][j]));
                for (int i = 0; i < m; i++) sum += e[i] = Math.Exp(Math.Abs(ds[i][j]) - max);
                double v = b[j];
                for (int i = 0; i < m; i++)
                {
                    float d = ds[i][j];
                    double s = Math.Abs(d) > threshold[i] ? calibration : e[i] / sum;
                    acc[i] += s;
                    v += d * s;
                }
                b[j] = (float)v;
            }
            ctx.Output.Write(start, b);
        });
        ctx.Diagnostics.EffectiveWeights(weightSums.Select(s => s / ctx.Count).ToList());
    }

    /// <summary>Within-model ranks j/n (stable ascending order), per model.</summary>
    private static double[][] Ranks(float[][] values)
    {
        var ws = Ranking.Workspace.ForCurrentThread();
        return values.Select(v =>
        {
            var r = new int[v.Length];
            Ranking.AscendingRanks(v, r, ws);
            return r.Select(x => (double)x / v.Length).ToArray();
        }).ToArray();
    }

    /// <summary>
    /// MergeLLM's score: softmax across models per column, then entries above the model's mean × ratio
    /// (strict) set to the calibration value.
    /// </summary>
    internal static double[][] Score(double[][] r, double ratio, double calibration)
    {
        int m = r.Length;
        long n = r[0].Length;
        var s = new double[m][];
        for (int i = 0; i < m; i++) s[i] = new double[n];
        for (long c = 0; c < n; c++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int i = 0; i < m; i++) max = Math.Max(max, r[i][c]);
            for (int i = 0; i < m; i++) sum += s[i][c] = Math.Exp(r[i][c] - max);
            for (int i = 0; i < m; i++) s[i][c] /= sum;
        }
        for (int i = 0; i < m; i++)
        {
            double avg = r[i].Average();
            for (long c = 0; c < n; c++)
                if (r[i][c] > avg * ratio) s[i][c] = calibration;
        }
        return s;
    }
}
