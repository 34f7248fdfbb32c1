using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

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
                deltas(start, length, sc);
                acc[0] += Variance(sc.Arrays(m, length), m, variance.Slice(start, length));
            });
            long k = (long)(topk * nonzero[0]);
            ctx.Diagnostics.Set("selected_fraction", (double)k / n);
            if (k == 0) none = true;
            else
            {
                var buf = variance;
                var selection = OrderStatistics.Select(n, [n - k], (start, length, sc) => buf.Slice(start, length).CopyTo(sc.Get(0, length)), 0x5CE5_E1EC7UL ^ (ulong)n, ctx.Cancellation, sums: false);
                var r = selection.Results[0][0];
                // Exactly k positions (ties at the threshold by index, like any top-k order).
                low = r.Less == n - k ? new MaskKey(r.Value, long.MinValue) : new MaskKey(r.Value, selection.IndexOfEqual(0, n - k, n - k - r.Less));
            }
        }

        // Keep (select mask) for elements [start, start + length): variance key >= low.
        void Select(Span<float> d, long start, int length)
        {
            if (variance is null) return;
            if (none)
            {
                d.Clear();
                return;
            }
            KeepAtLeast(d, variance.Slice(start, length), start, low);
        }

        // Calculate: Σ (mask ⊙ Δ_i)² per model.
        var sq = Chunked.Reduce(n, 2 * m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                acc[m + i] += TensorPrimitives.SumOfSquares(d);
                Select(d, start, length);
                acc[i] += TensorPrimitives.SumOfSquares(d);
            }
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
        var wf = w.Select(x => (float)x).ToArray();
        float floor = maskDeltas ? 1e-6f : 0f;
        var conflicts = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            var xs = sc.Arrays(m + 4, length);
            var b = xs[m].AsSpan(0, length);
            bool keyed = maskDeltas && variance is not null && !none;
            var keys = keyed ? variance!.Slice(start, length) : default;
            acc[0] += EraseAndCombine(xs, m, b, keys, start, low, keyed, maskDeltas && none, wf, floor);
            ctx.Output.Write(start, b);
        });
        ctx.Diagnostics.SignConflictRate(conflicts[0] / n);
    }

    /// <summary>
    /// Population variance across the m series per element, in FP64 (4 lanes at a time), written as F32; returns the
    /// number of non-zero variances. Identical deltas give exactly 0 (the mean of equal values is exact in FP64).
    /// </summary>
    internal static long Variance(float[][] d, int m, Span<float> variance)
    {
        int n = variance.Length, j = 0;
        long nonzero = 0;
        if (Vector.IsHardwareAccelerated && Vector<double>.Count * 2 == Vector<float>.Count)
        {
            int w = Vector<float>.Count;
            Span<Vector<double>> lo = stackalloc Vector<double>[8], hi = stackalloc Vector<double>[8];
            bool fits = m <= 8;
            var nonzeroLanes = Vector<int>.Zero;
            for (; fits && j <= n - w; j += w)
            {
                var sumLo = Vector<double>.Zero;
                var sumHi = Vector<double>.Zero;
                for (int i = 0; i < m; i++)
                {
                    Vector.Widen(new Vector<float>(d[i], j), out lo[i], out hi[i]);
                    sumLo += lo[i];
                    sumHi += hi[i];
                }
                var inv = new Vector<double>(1.0 / m);
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
                v.CopyTo(variance.Slice(j, w));
                nonzeroLanes -= Vector.OnesComplement(Vector.Equals(v, Vector<float>.Zero));
            }
            nonzero = Vector.Sum(nonzeroLanes);
        }
        for (; j < n; j++)
        {
            double mean = 0;
            for (int i = 0; i < m; i++) mean += d[i][j];
            mean /= m;
            double ss = 0;
            for (int i = 0; i < m; i++)
            {
                double a = d[i][j] - mean;
                ss += a * a;
            }
            variance[j] = (float)(ss / m);
            if (variance[j] != 0) nonzero++;
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
    /// the separate loops, which also finish the tail). <paramref name="d"/> holds the m deltas, then scratch rows
    /// m+1..m+3; rows 0..m-1 are overwritten. Returns the number of elements whose masked deltas take both signs.
    /// </summary>
    internal static long EraseAndCombine(float[][] d, int m, Span<float> b, ReadOnlySpan<float> keys, long start, MaskKey low, bool keyed, bool zeroAll,
        float[] weights, float floor)
    {
        int n = b.Length, j = 0;
        long conflicts = 0;
        if (TaskVectorKernels.VectorPath && m <= TaskVectorKernels.MaxVectorModels)
        {
            const int w = 8;
            Span<Vector256<float>> dw = stackalloc Vector256<float>[m];
            Span<Vector256<float>> vw = stackalloc Vector256<float>[m];
            for (int i = 0; i < m; i++) vw[i] = Vector256.Create(weights[i]);
            var zero = Vector256<float>.Zero;
            var one = Vector256<float>.One;
            var vLo = Vector256.Create(low.Value);
            var vFloor = Vector256.Create(floor);
            var vLambda = Vector256.Create(1f);
            // Lanes at or after the tie index keep a key equal to the threshold: index >= loTie  <=>  !(loTie > index).
            var loTie = Vector256.Create((int)(Math.Clamp(low.Index, start - 1, start + n) - start));
            var index = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
            var step = Vector256.Create(w);
            var cnt = Vector256<int>.Zero;
            ref float rb = ref MemoryMarshal.GetReference(b);
            ref float rk = ref MemoryMarshal.GetReference(keys);
            for (; j <= n - w; j += w, index += step)
            {
                var keep = Vector256<float>.AllBitsSet;
                if (keyed)
                {
                    var k = Vector256.LoadUnsafe(ref rk, (nuint)j);
                    keep = Vector256.GreaterThan(k, vLo) | Vector256.AndNot(Vector256.Equals(k, vLo), Vector256.GreaterThan(loTie, index).AsSingle());
                }
                if (zeroAll) keep = zero;
                var sum = zero;
                var mx = zero;
                var mn = zero;
                for (int i = 0; i < m; i++)
                {
                    var v = keep & Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(d[i]), (nuint)j);
                    sum = i == 0 ? zero + v : sum + v;
                    mx = i == 0 ? v : Vector256.Max(mx, v);
                    mn = i == 0 ? v : Vector256.Min(mn, v);
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
                (Vector256.LoadUnsafe(ref rb, (nuint)j) + vLambda * mix).StoreUnsafe(ref rb, (nuint)j);
                cnt -= (Vector256.GreaterThan(mx, zero) & Vector256.LessThan(mn, zero)).AsInt32();
            }
            conflicts = Vector.Sum(cnt.AsVector());
        }
        if (j == n) return conflicts;
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
