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
/// SCE: Select, Calculate, Erase (FuseChat 2.0, arXiv 2408.07990; spec §2.12). Per tensor, with task vectors Δ_i:
/// <b>select</b> (when <c>select_topk</c> &lt; 1) the <c>k = int(select_topk · count_nonzero(var))</c> positions of
/// largest element-wise population variance of the Δ_i across models; <b>calculate</b> per-model weights
/// <c>w_i ∝ Σ(mask ⊙ Δ_i)² / numel</c>; <b>erase</b> minority signs (sign of Σ Δ_i, 0 → +) and take the weighted
/// disjoint mean. The two reference implementations differ, selected by <c>sce_mask_mode</c>:
/// <c>deltas</c> (mergekit <c>sce</c>, the default, since the YAML dialect is mergekit's) multiplies the deltas by
/// the mask, so unselected positions keep the base, erases on the masked deltas, uniform weights when
/// Σ &lt; 1e-6 and clamps the divisor at 1e-6; <c>weights_only</c> (the FuseChat repository's
/// <c>sce_merging.py</c>) uses the mask only for the weights, erases on the unmasked deltas, uniform weights
/// when Σ = 0 and replaces a zero divisor by 1. Neither uses user weights or lambda.
/// </summary>
public sealed class Sce : IMergeMethod
{
    public string Name => "sce";

    public string PrettyName => "SCE";

    public string? Reference => "https://arxiv.org/abs/2408.07990";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CutToBase;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Number("select_topk", 1.0, "fraction of the high-variance positions selected", MethodHelpers.Density),
        ParameterDef.Choice("sce_mask_mode", "deltas", ["deltas", "weights_only"],
            "deltas: the variance mask zeroes the task vectors (mergekit); weights_only: it only shapes the weights (FuseChat repository)"),
        ParameterDef.Bool("int8_mask", false, "mergekit memory option; accepted, no effect on the result"),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 0);

    public long WorkspaceBytes(TensorTask task) =>
        task.Parameters.Number("select_topk") < 1 ? task.Count * 4 + task.Count / 8 * 4 : 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        int m = task.Inputs.Count;
        if (m == 0)
        {
            MethodHelpers.CopyInput(ctx, task.Base!);
            return;
        }
        double topk = task.Parameters.Number("select_topk");
        bool maskDeltas = task.Parameters.String("sce_mask_mode") == "deltas";
        var deltas = MethodHelpers.Deltas(task);
        var stored = TaskVectorKernels.CanDecodeBFloat16 ? StoredBFloat16.Of(task) : null;
        long n = ctx.Count;

        // Select: variance across models per element (FP64 per element), kept in a buffer, then a top-k key range on it.
        FloatBuffer? variance = null;
        MaskKey low = MaskKey.Min;
        bool none = false;
        if (topk < 1)
        {
            variance = ctx.Allocate(n);
            var nonzero = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
            {
                var v = variance.Slice(start, length);
                if (stored is not null && VarianceOfStored(stored, start, v, out long count))
                {
                    acc[0] += count;
                    return;
                }
                deltas(start, length, sc);
                acc[0] += Variance(sc.Arrays(m, length), m, v);
            });
            long k = (long)(topk * nonzero[0]);
            ctx.Diagnostics.Set("selected_fraction", (double)k / n);
            if (k == 0) none = true;
            else
            {
                var buf = variance;
                // The keys are read where they are, not copied chunk by chunk into scratch.
                ChunkView keys = (start, length, _) => buf.Slice(start, length);
                var selection = OrderStatistics.Select(n, [n - k], keys, 0x5CE5_E1EC7UL ^ (ulong)n, ctx.Cancellation, sums: false);
                var r = selection.Results[0][0];
                // Exactly k positions (ties at the threshold by index, like any top-k order).
                low = r.Less == n - k ? new MaskKey(r.Value, long.MinValue) : new MaskKey(r.Value, selection.IndexOfEqual(0, n - k, n - k - r.Less));
            }
        }

        // Calculate: Σ (mask ⊙ Δ_i)² per model (acc[i]) and Σ Δ_i² (acc[m + i]); the select mask keeps variance keys >= low.
        // Tried and measured slower (merge bench, perf samples): taking these sums in the variance kernel for the elements
        // above a sampled bracket of the threshold and listing those inside it (~2% of the elements, re-read afterwards).
        // The kernel's samples nearly doubled (extraction branches, Δ kept on the stack) and the scattered re-reads of the
        // listed elements (four mappings each) cost about as much as this whole pass.
        bool selectKeyed = variance is not null && !none, selectNone = variance is not null && none;
        var sq = Chunked.Reduce(n, 2 * m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            var keys = selectKeyed ? variance!.Slice(start, length) : default;
            if (stored is not null && SquaredSumsOfStored(stored, start, length, keys, low, selectKeyed, selectNone, acc)) return;
            deltas(start, length, sc);
            var rows = sc.Arrays(m, length);
            SquaredSums(new RowDeltas(rows), rows, m, length, keys, start, low, selectKeyed, selectNone, acc);
        });
        var w = new double[m];
        double total = 0;
        for (int i = 0; i < m; i++) total += w[i] = sq[i] / n;
        bool uniform = maskDeltas ? total < 1e-6 : total == 0;
        for (int i = 0; i < m; i++) w[i] = uniform ? 1.0 / m : w[i] / total;
        if (uniform) ctx.Diagnostics.Guard(maskDeltas ? "Σ mean(Δ²) < 1e-6: uniform weights" : "Σ of masked squares = 0: uniform weights");
        ctx.Diagnostics.EffectiveWeights(w);
        ctx.Diagnostics.DeltaNorms(Enumerable.Range(0, m).Select(i => Math.Sqrt(sq[m + i])).ToList());

        // Erase + disjoint weighted mean (the TIES combine with the SCE weights, election on the unweighted sum).
        // Tried and measured no faster (per-phase process CPU, merge bench, A/B in one build): the calculate pass recording the
        // select mask as bits (1 bit per element) for this pass to read instead of the 4-byte keys: this pass's CPU did not drop
        // (it is not limited by reading the keys) and the calculate pass's rose by the mask stores.
        var wf = w.Select(x => (float)x).ToArray();
        float floor = maskDeltas ? 1e-6f : 0f;
        bool keyed = maskDeltas && variance is not null && !none;
        var conflicts = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
        {
            var xs = sc.Arrays(m + 4, length);
            var b = xs[m].AsSpan(0, length);
            var keys = keyed ? variance!.Slice(start, length) : default;
            // Chunks the earlier passes screened are decoded from their BF16 bits inside the kernel.
            if (stored is not null && stored.Screened(start, length, out var raw))
                acc[0] += EraseAndCombine(raw, xs, m, b, keys, start, low, keyed, maskDeltas && none, wf, floor);
            else
            {
                deltas(start, length, sc);
                acc[0] += EraseAndCombine(new RowDeltas(xs), xs, m, b, keys, start, low, keyed, maskDeltas && none, wf, floor);
            }
            ctx.Output.Write(start, b);
        });
        ctx.Diagnostics.SignConflictRate(conflicts[0] / n);
    }

    /// <summary>
    /// Population variance across the m series per element, in FP64 (4 lanes at a time), written as F32; returns the
    /// number of non-zero variances. Identical deltas give exactly 0 (the mean of equal values is exact in FP64).
    /// </summary>
    internal static long Variance(float[][] d, int m, Span<float> variance) => Variance(new RowDeltas(d), m, variance, out _);

    /// <summary>
    /// <see cref="Variance(float[][], int, Span{float})"/> of the task vectors <paramref name="d"/> gives; <paramref name="finite"/>
    /// tells whether every variance is finite (a NaN or infinite input makes its element's variance NaN or infinite).
    /// </summary>
    internal static unsafe long Variance<T>(T d, int m, Span<float> variance, out bool finite) where T : struct, ITaskVectors
    {
        int n = variance.Length, j = 0;
        long nonzero = 0;
        finite = true;
        if (Vector.IsHardwareAccelerated && Vector<double>.Count * 2 == Vector<float>.Count)
        {
            int w = Vector<float>.Count;
            Vector<double>* lo = stackalloc Vector<double>[8], hi = stackalloc Vector<double>[8];
            bool fits = m <= 8;
            var nonzeroLanes = Vector<int>.Zero;
            var finiteLanes = Vector<int>.AllBitsSet;
            var infinity = new Vector<float>(float.PositiveInfinity);
            var inv = new Vector<double>(1.0 / m);
            ref float rv = ref MemoryMarshal.GetReference(variance);
            for (; fits && j <= n - w; j += w)
            {
                var sumLo = Vector<double>.Zero;
                var sumHi = Vector<double>.Zero;
                // 256-bit vectors: the task vectors from their source (the base decoded once); otherwise F32 rows.
                var b8 = Vector<float>.Count == 8 ? d.Base(j) : default;
                for (int i = 0; i < m; i++)
                {
                    Vector.Widen(Vector<float>.Count == 8 ? d.Delta(i, j, b8).AsVector() : d.LoadVector(i, j), out var l, out var h);
                    lo[i] = l;
                    hi[i] = h;
                    sumLo += l;
                    sumHi += h;
                }
                var meanLo = sumLo * inv;
                var meanHi = sumHi * inv;
                var ssLo = Vector<double>.Zero;
                var ssHi = Vector<double>.Zero;
                for (int i = 0; i < m; i++)
                {
                    var a = lo[i] - meanLo;
                    var c = hi[i] - meanHi;
                    ssLo += a * a;
                    ssHi += c * c;
                }
                var v = Vector.Narrow(ssLo * inv, ssHi * inv);
                Unsafe.As<float, Vector<float>>(ref Unsafe.Add(ref rv, j)) = v;
                nonzeroLanes -= Vector.OnesComplement(Vector.Equals(v, Vector<float>.Zero));
                finiteLanes &= Vector.LessThan(Vector.Abs(v), infinity); // false for NaN
            }
            nonzero = Vector.Sum(nonzeroLanes);
            finite = Vector.EqualsAll(finiteLanes, Vector<int>.AllBitsSet);
        }
        for (; j < n; j++)
        {
            double mean = 0;
            for (int i = 0; i < m; i++) mean += d.At(i, j);
            mean /= m;
            double ss = 0;
            for (int i = 0; i < m; i++)
            {
                double a = d.At(i, j) - mean;
                ss += a * a;
            }
            variance[j] = (float)(ss / m);
            if (variance[j] != 0) nonzero++;
            finite &= float.IsFinite(variance[j]);
        }
        return nonzero;
    }

    /// <summary>
    /// One model's share of the erase pass, in one loop: with <paramref name="keyed"/> the select mask
    /// (<see cref="KeepAtLeast"/>), then <c>sum += d</c> (the first model: <c>sum = 0 + d</c>), the running max/min
    /// (the first model: copies) and <c>d *= weight</c>. <see cref="EraseTermsReference"/> is the same as separate passes.
    /// Max/min only feed the conflict count (max &gt; 0 and min &lt; 0), which no choice between ±0 changes.
    /// </summary>
    internal static void EraseTerms(Span<float> d, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, float weight,
        Span<float> sum, Span<float> max, Span<float> min, bool first)
    {
        int j = 0, w = Vector<float>.Count, n = d.Length;
        if (Vector.IsHardwareAccelerated)
        {
            var lo = new Vector<float>(low.Value);
            var vw = new Vector<float>(weight);
            var zero = Vector<float>.Zero;
            for (; j <= n - w; j += w)
            {
                var v = new Vector<float>(d.Slice(j, w));
                if (keyed)
                {
                    var k = new Vector<float>(keys.Slice(j, w));
                    if (!Vector.EqualsAll(Vector.Equals(k, lo), Vector<int>.Zero))
                    {
                        for (int i = j; i < j + w; i++) if (!low.AtLeast(keys[i], start + i)) d[i] = 0;
                        v = new Vector<float>(d.Slice(j, w));
                    }
                    else v = Vector.ConditionalSelect(Vector.GreaterThan(k, lo), v, zero);
                }
                (first ? zero + v : new Vector<float>(sum.Slice(j, w)) + v).CopyTo(sum.Slice(j, w));
                (first ? v : Vector.Max(new Vector<float>(max.Slice(j, w)), v)).CopyTo(max.Slice(j, w));
                (first ? v : Vector.Min(new Vector<float>(min.Slice(j, w)), v)).CopyTo(min.Slice(j, w));
                (v * vw).CopyTo(d.Slice(j, w));
            }
        }
        for (; j < n; j++)
        {
            float v = keyed && !low.AtLeast(keys[j], start + j) ? 0f : d[j];
            sum[j] = first ? 0f + v : sum[j] + v;
            max[j] = first ? v : MathF.Max(max[j], v);
            min[j] = first ? v : MathF.Min(min[j], v);
            d[j] = v * weight;
        }
    }

    /// <summary>
    /// The erase pass of one chunk: for every model <see cref="EraseTerms"/> (select mask, or all zero with
    /// <paramref name="zeroAll"/>; the election sum, max/min, weighting), then <see cref="TaskVectorKernels.Combine"/>
    /// (election on the unweighted sum, 0 → +; disjoint weighted mean with the divisor at least <paramref name="floor"/>)
    /// into <paramref name="b"/>. Vectors are done element-outer with every intermediate in registers (the weighted
    /// deltas in a small stack array), one load per input and one store per result, instead of four loads and stores per
    /// model and element across separate loops; the same operations in the same order, so bit-identical (tested against
    /// the separate loops, which also finish the tail). The vectors test for a conflict as "some lane above 0 and some
    /// below", which is max &gt; 0 and min &lt; 0 for task vectors (never NaN: inputs are finite), without the IEEE
    /// max/min fix-ups. <paramref name="d"/> holds the m deltas, then scratch rows
    /// m+1..m+3; rows 0..m-1 are overwritten. Returns the number of elements whose masked deltas take both signs.
    /// </summary>
    internal static long EraseAndCombine(float[][] d, int m, Span<float> b, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, bool zeroAll,
        float[] weights, float floor) => EraseAndCombine(new RowDeltas(d), d, m, b, keys, start, low, keyed, zeroAll, weights, floor);

    /// <summary>
    /// <see cref="EraseAndCombine(float[][], int, Span{float}, ReadOnlySpan{float}, long, MaskKey, bool, bool, float[], float)"/>
    /// of the task vectors <paramref name="src"/> gives (with the base from <paramref name="src"/>; <paramref name="b"/> receives
    /// the result), <paramref name="d"/> the rows for the tail.
    /// </summary>
    internal static unsafe long EraseAndCombine<T>(T src, float[][] d, int m, Span<float> b, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, bool zeroAll,
        float[] weights, float floor) where T : struct, ITaskVectors
    {
        int n = b.Length, j = 0;
        long conflicts = 0;
        if (TaskVectorKernels.VectorPath && m <= TaskVectorKernels.MaxVectorModels)
        {
            const int w = 8;
            Vector256<float>* dw = stackalloc Vector256<float>[m];
            Vector256<float>* vw = stackalloc Vector256<float>[m];
            for (int i = 0; i < m; i++) vw[i] = Vector256.Create(weights[i]);
            var zero = Vector256<float>.Zero;
            var one = Vector256<float>.One;
            var vLo = Vector256.Create(low.Value);
            var vFloor = Vector256.Create(floor);
            var loTie = TaskVectorKernels.TieIndex(low.Index, start, n);
            var cnt = Vector256<int>.Zero;
            ref float rb = ref MemoryMarshal.GetReference(b);
            ref float rk = ref MemoryMarshal.GetReference(keys);
            for (; j <= n - w; j += w)
            {
                var keep = keyed ? KeepLanes(ref rk, j, vLo, loTie) : Vector256<float>.AllBitsSet;
                if (zeroAll) keep = zero;
                var b8 = src.Base(j);
                var sum = zero;
                var anyPositive = zero;
                var anyNegative = zero;
                for (int i = 0; i < m; i++)
                {
                    var v = keep & src.Delta(i, j, b8);
                    sum = i == 0 ? zero + v : sum + v;
                    anyPositive |= Vector256.GreaterThan(v, zero);
                    anyNegative |= Vector256.LessThan(v, zero);
                    dw[i] = v * vw[i];
                }
                // Combine with tie sign +1, flips +1, weights as divisors, normalize, lambda 1.
                var pos = Vector256.GreaterThan(sum, zero) | Vector256.Equals(sum, zero);
                var neg = Vector256.LessThan(sum, zero);
                var mix = zero;
                var div = zero;
                for (int i = 0; i < m; i++)
                {
                    var di = dw[i];
                    var agree = (pos & Vector256.GreaterThan(di, zero)) | (neg & Vector256.LessThan(di, zero));
                    mix += agree & di;
                    div += agree & vw[i];
                }
                div = Vector256.ConditionalSelect(Vector256.Equals(div, zero), one, div);
                if (floor > 0) div = Vector256.Max(div, vFloor);
                mix /= div;
                // λ = 1: b + 1 · mix is b + mix exactly.
                (src.Output(ref rb, j, b8) + mix).StoreUnsafe(ref rb, (nuint)j);
                cnt -= (anyPositive & anyNegative).AsInt32();
            }
            conflicts = Vector.Sum(cnt.AsVector());
        }
        if (j == n) return conflicts;
        src.Materialize(d, b, j, n);
        // The tail through the separate loops (their scalar paths), on rows m+1..m+3 as sum/max/min.
        int tail = n - j;
        var sumT = d[m + 1].AsSpan(j, tail);
        var maxT = d[m + 2].AsSpan(j, tail);
        var minT = d[m + 3].AsSpan(j, tail);
        for (int i = 0; i < m; i++)
        {
            var di = d[i].AsSpan(j, tail);
            if (zeroAll) di.Clear();
            EraseTerms(di, keyed ? keys.Slice(j) : default, start + j, low, keyed, weights[i], sumT, maxT, minT, first: i == 0);
        }
        Span<float> flip = m <= 64 ? stackalloc float[m] : new float[m];
        flip.Fill(1f);
        // No register path here (no 256-bit vectors, or more models than it holds): the whole chunk by the vectorised combine.
        if (j == 0) return TaskVectorKernels.Combine(d, m, b, sumT, weights, flip, 1f, countDivisor: false, normalize: true, lambda: 1f, floor, maxT, minT);
        for (int t = 0; t < tail; t++)
        {
            var (mix, div) = TaskVectorKernels.CombineElement(d, m, j + t, sumT[t], weights, flip, 1f, countDivisor: false);
            if (floor > 0) div = MathF.Max(div, floor);
            b[j + t] += 1f * (mix / div);
            if (maxT[t] > 0 && minT[t] < 0) conflicts++;
        }
        return conflicts;
    }

    /// <summary>The select mask of elements j..j+7 (all ones where (key, index) ≥ low), as <see cref="KeepAtLeast"/> decides it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> KeepLanes(ref float keys, int j, Vector256<float> low, Vector256<int> loTie) =>
        TaskVectorKernels.AtLeast(Vector256.LoadUnsafe(ref keys, (nuint)j), low, loTie, Vector256.Create(j) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7));

    /// <summary>
    /// True where <see cref="SquaredSums{T}"/> reproduces <see cref="TensorPrimitives.SumOfSquares"/> in registers:
    /// its float aggregation runs on 256-bit vectors (AVX2 without AVX-512), whose order the kernel follows.
    /// </summary>
    internal static bool SumsInRegisters => TaskVectorKernels.VectorPath && !Vector512.IsHardwareAccelerated;

    /// <summary>
    /// The calculate pass of one chunk of <paramref name="n"/> elements: per model, <c>acc[m + i] += Σ Δ_i²</c> and, after the
    /// select mask (<see cref="KeepAtLeast"/> with <paramref name="keyed"/>, all zero with <paramref name="zeroAll"/>),
    /// <c>acc[i] += Σ (mask ⊙ Δ_i)²</c>, each sum the float <see cref="TensorPrimitives.SumOfSquares"/> of the chunk.
    /// Where <see cref="SumsInRegisters"/> all 2m sums come from one pass in registers, in TensorPrimitives' summation
    /// order (bit-identical, tested against it); otherwise the task vectors are written to <paramref name="rows"/> and summed
    /// by TensorPrimitives (rows 0..m-1 are overwritten).
    /// </summary>
    internal static void SquaredSums<T>(T d, float[][] rows, int m, int n, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, bool zeroAll,
        Span<double> acc) where T : struct, ITaskVectors
    {
        if (SumsInRegisters && n >= 8 && m <= TaskVectorKernels.MaxVectorModels)
        {
            SquaredSumsInRegisters(d, m, n, keys, start, low, keyed, zeroAll, acc);
            return;
        }
        d.Materialize(rows, default, 0, n);
        for (int i = 0; i < m; i++)
        {
            var di = rows[i].AsSpan(0, n);
            acc[m + i] += TensorPrimitives.SumOfSquares(di);
            if (zeroAll) di.Clear();
            else if (keyed) KeepAtLeast(di, keys, start, low);
            acc[i] += TensorPrimitives.SumOfSquares(di);
        }
    }

    /// <summary>
    /// <see cref="SquaredSums{T}"/> in registers (n ≥ 8, 256-bit vectors, at most MaxVectorModels models). TensorPrimitives
    /// sums a float span of n ≥ 8 into one vector of lane sums, in this order: the vectors from element 8 in blocks of
    /// eight while a whole block remains (only when n &gt; 64), then the first vector, then the remaining whole vectors, then
    /// the last vector with only its lanes past those (the others add the identity 0); then <see cref="Vector256.Sum{T}(Vector256{T})"/>.
    /// Each step adds every model's square and masked square to its own lane sums.
    /// </summary>
    private static void SquaredSumsInRegisters<T>(T d, int m, int n, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, bool zeroAll,
        Span<double> acc) where T : struct, ITaskVectors
    {
        Span<Vector256<float>> all = stackalloc Vector256<float>[m];
        Span<Vector256<float>> kept = stackalloc Vector256<float>[m];
        all.Clear();
        kept.Clear();
        var vLo = Vector256.Create(low.Value);
        var loTie = TaskVectorKernels.TieIndex(low.Index, start, n);
        ref float rk = ref MemoryMarshal.GetReference(keys);
        var every = Vector256<float>.AllBitsSet;
        int body = n > 64 ? 8 + (n - 8) / 64 * 64 : 8;
        int whole = body + (n - body) / 8 * 8;
        // The select mask of elements j..j+7.
        var mode = zeroAll ? 0 : keyed ? 1 : 2;
        for (int j = 8; j < body; j += 8) AddSquares(d, m, j, every, SelectLanes(mode, ref rk, j, vLo, loTie), all, kept);
        AddSquares(d, m, 0, every, SelectLanes(mode, ref rk, 0, vLo, loTie), all, kept);
        for (int j = body; j < whole; j += 8) AddSquares(d, m, j, every, SelectLanes(mode, ref rk, j, vLo, loTie), all, kept);
        var last = Vector256.GreaterThanOrEqual(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(8 - (n - whole))).AsSingle();
        AddSquares(d, m, n - 8, last, SelectLanes(mode, ref rk, n - 8, vLo, loTie), all, kept);
        for (int i = 0; i < m; i++)
        {
            acc[i] += Vector256.Sum(kept[i]);
            acc[m + i] += Vector256.Sum(all[i]);
        }
    }

    /// <summary>Mode 0: no lane selected; 1: <see cref="KeepLanes"/>; 2: every lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SelectLanes(int mode, ref float keys, int j, Vector256<float> low, Vector256<int> loTie) =>
        mode == 0 ? Vector256<float>.Zero : mode == 1 ? KeepLanes(ref keys, j, low, loTie) : Vector256<float>.AllBitsSet;

    /// <summary>Adds the squares of the <paramref name="lanes"/> of elements j..j+7 of every task vector, and of their <paramref name="keep"/> lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddSquares<T>(T d, int m, int j, Vector256<float> lanes, Vector256<float> keep, Span<Vector256<float>> all, Span<Vector256<float>> kept)
        where T : struct, ITaskVectors
    {
        var b8 = d.Base(j);
        for (int i = 0; i < m; i++)
        {
            var v = lanes & d.Delta(i, j, b8);
            all[i] += v * v;
            var k = keep & v;
            kept[i] += k * k;
        }
    }

    /// <summary>
    /// The variance pass of one chunk of stored BF16 inputs decoded in the kernel (<see cref="Variance{T}"/>); false, with
    /// nothing marked, when a variance is not finite (a NaN/Inf input, or a finite overflow), as the kernel tells without
    /// another pass over the chunk: then the checked reads redo the chunk and name a bad element (after an overflow they find
    /// none and give the same variances). Otherwise the chunk is marked screened for the later passes.
    /// </summary>
    private static bool VarianceOfStored(StoredBFloat16 stored, long start, Span<float> variance, out long nonzero)
    {
        nonzero = Variance(stored.Bits(start, variance.Length), stored.Count, variance, out bool finite);
        if (!finite) return false;
        stored.MarkScreened(start, variance.Length);
        return true;
    }

    /// <summary>
    /// The calculate pass of one chunk of stored BF16 inputs decoded in registers (<see cref="SquaredSums{T}"/>); false when
    /// that kernel does not apply or a sum of squares is not finite (a NaN/Inf input, or an overflow), for the checked reads
    /// to redo the chunk. Otherwise the sums are added to <paramref name="acc"/> and the chunk is marked screened.
    /// </summary>
    private static bool SquaredSumsOfStored(StoredBFloat16 stored, long start, int length, ReadOnlySpan<float> keys, MaskKey low, bool keyed, bool zeroAll,
        Span<double> acc)
    {
        int m = stored.Count;
        if (!SumsInRegisters || length < 8 || m > TaskVectorKernels.MaxVectorModels) return false;
        Span<double> sums = stackalloc double[2 * m];
        sums.Clear();
        SquaredSumsInRegisters(stored.Bits(start, length), m, length, keys, start, low, keyed, zeroAll, sums);
        for (int i = m; i < 2 * m; i++)
            if (!double.IsFinite(sums[i])) return false;
        for (int i = 0; i < 2 * m; i++) acc[i] += sums[i];
        stored.MarkScreened(start, length);
        return true;
    }

    /// <summary>The definition of <see cref="EraseTerms"/> as separate passes (for tests).</summary>
    internal static void EraseTermsReference(Span<float> d, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, float weight,
        Span<float> sum, Span<float> max, Span<float> min, bool first)
    {
        if (keyed) KeepAtLeast(d, keys, start, low);
        if (first) sum.Clear();
        TensorPrimitives.Add(sum, d, sum);
        if (first)
        {
            d.CopyTo(max);
            d.CopyTo(min);
        }
        else
        {
            TensorPrimitives.Max(max, d, max);
            TensorPrimitives.Min(min, d, min);
        }
        TensorPrimitives.Multiply(d, weight, d);
    }

    /// <summary>Zeroes <paramref name="target"/> where (key, index) &lt; <paramref name="low"/> (vectorised; boundary ties per element).</summary>
    internal static void KeepAtLeast(Span<float> target, ReadOnlySpan<float> keys, long start, MaskKey low)
    {
        int j = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var lo = new Vector<float>(low.Value);
            for (; j <= target.Length - w; j += w)
            {
                var k = new Vector<float>(keys.Slice(j, w));
                if (!Vector.EqualsAll(Vector.Equals(k, lo), Vector<int>.Zero))
                {
                    for (int i = j; i < j + w; i++) if (!low.AtLeast(keys[i], start + i)) target[i] = 0;
                    continue;
                }
                Vector.ConditionalSelect(Vector.GreaterThan(k, lo), new Vector<float>(target.Slice(j, w)), Vector<float>.Zero).CopyTo(target.Slice(j, w));
            }
        }
        for (; j < target.Length; j++) if (!low.AtLeast(keys[j], start + j)) target[j] = 0;
    }
}
