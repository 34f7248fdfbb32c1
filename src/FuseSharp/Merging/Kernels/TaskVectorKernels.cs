using System.Numerics;
using System.Runtime.CompilerServices;

namespace FuseSharp.Merging.Kernels;

/// <summary>What the TIES-style election sums: weighted deltas (mergekit), unweighted masked deltas (paper), or signs (count).</summary>
public enum ElectionBasis
{
    Weighted,
    Unweighted,
    Count,
}

/// <summary>
/// The fused per-chunk kernels of task-vector merging (one pass per model, then one combining pass), so a chunk is
/// read from L1 a handful of times instead of once per elementary operation. <see cref="PrepareReference"/> and
/// <see cref="CombineElement"/> are the plain scalar definitions the tests check the vector versions against.
/// </summary>
public static class TaskVectorKernels
{
    /// <summary>Lane numbers 0, 1, 2, ... as a vector.</summary>
    private static readonly Vector<int> Lanes = BuildLanes();

    /// <summary>A boundary index relative to a vector's first element, clamped to [-1, lanes] so it fits an int lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RelativeIndex(long index, long first) =>
        index < first ? -1 : index - first > Vector<int>.Count ? Vector<int>.Count : (int)(index - first); // no overflow at long.MinValue/MaxValue

    private static Vector<int> BuildLanes()
    {
        Span<int> l = stackalloc int[Vector<int>.Count];
        for (int i = 0; i < l.Length; i++) l[i] = i;
        return new Vector<int>(l);
    }

    /// <summary>256 lane masks for 8 bits (bit j set → lane j all ones), for expanding DARE/DELLA bit masks 8 lanes at a time.</summary>
    private static readonly Vector<int>[] ByteMasks = BuildByteMasks();

    /// <summary>
    /// Turns one model's raw values into its weighted sparsified delta, in place: effectively
    /// <c>d = x − b; ss = Σ d²; m = keep(d) ? d · scale : 0; x = weight · m</c>, and accumulates the election sum
    /// (<c>sum += m</c>, <c>weight·m</c> or <c>sign(weight·m)</c>) and the running element-wise maximum and minimum of
    /// <c>m</c> (for the sign-conflict statistic; <paramref name="first"/> initialises them). Returns ss.
    /// </summary>
    public static double Prepare(Span<float> x, ReadOnlySpan<float> b, long start, SparseMask? mask, float weight,
        Span<float> sum, ElectionBasis basis, Span<float> max, Span<float> min, bool first)
    {
        int n = x.Length;
        if (b.Length < n || sum.Length < n || max.Length < n || min.Length < n) throw new ArgumentException("buffers shorter than x");
        float scale = mask?.Scale ?? 1f;
        bool all = mask is null || mask.IsAll;
        var bits = all ? null : mask!.Bits;
        ReadOnlySpan<ulong> words = bits is null ? default : bits.Words(start, n);
        Span<float> elementScale = mask?.ElementScale is { } es ? es.Slice(start, n) : default;
        var low = mask?.Low ?? MaskKey.Min;
        var high = mask?.High ?? MaskKey.Max;
        double ss = 0;
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && w == 8)
        {
            var vScale = new Vector<float>(scale);
            var vWeight = new Vector<float>(weight);
            var vLo = new Vector<float>(low.Value);
            var vHi = new Vector<float>(high.Value);
            var zero = Vector<float>.Zero;
            var ssv = zero;
            int block = 0;
            for (; i <= n - w; i += w)
            {
                var d = new Vector<float>(x.Slice(i, w)) - new Vector<float>(b.Slice(i, w));
                ssv += d * d;
                Vector<float> m;
                if (all) m = d;
                else if (bits is not null)
                {
                    int byteValue = (int)((words[i >> 6] >> (i & 63)) & 0xFF);
                    m = Vector.ConditionalSelect(ByteMasks[byteValue], d, zero);
                }
                else
                {
                    // Keep low <= (|d|, index) <= high; equal values at a boundary compare the element index, lane-wise.
                    var a = Vector.Abs(d);
                    var keep = Vector.GreaterThan(a, vLo) & Vector.LessThan(a, vHi);
                    var atLo = Vector.Equals(a, vLo);
                    var atHi = Vector.Equals(a, vHi);
                    if (!Vector.EqualsAll(atLo | atHi, Vector<int>.Zero))
                    {
                        long e0 = start + i;
                        var loOk = Vector.GreaterThanOrEqual(Lanes, new Vector<int>(RelativeIndex(low.Index, e0)));
                        var hiOk = Vector.LessThanOrEqual(Lanes, new Vector<int>(RelativeIndex(high.Index, e0)));
                        var loPass = Vector.GreaterThan(a, vLo) | (atLo & loOk);
                        var hiPass = Vector.LessThan(a, vHi) | (atHi & hiOk);
                        keep = loPass & hiPass;
                    }
                    m = Vector.ConditionalSelect(keep, d, zero);
                }
                m = elementScale.IsEmpty ? m * vScale : m * new Vector<float>(elementScale.Slice(i, w));
                var weighted = m * vWeight;
                var s = new Vector<float>(sum.Slice(i, w));
                s += basis switch
                {
                    ElectionBasis.Unweighted => m,
                    ElectionBasis.Weighted => weighted,
                    _ => Sign(weighted),
                };
                s.CopyTo(sum.Slice(i, w));
                if (first)
                {
                    m.CopyTo(max.Slice(i, w));
                    m.CopyTo(min.Slice(i, w));
                }
                else
                {
                    Vector.Max(new Vector<float>(max.Slice(i, w)), m).CopyTo(max.Slice(i, w));
                    Vector.Min(new Vector<float>(min.Slice(i, w)), m).CopyTo(min.Slice(i, w));
                }
                weighted.CopyTo(x.Slice(i, w));
                if (++block == 64)
                {
                    ss += Vector.Sum(ssv);
                    ssv = zero;
                    block = 0;
                }
            }
            ss += Vector.Sum(ssv);
        }
        for (; i < n; i++)
        {
            float d = x[i] - b[i];
            ss += (double)d * d;
            bool keep = all || (bits is not null ? ((words[i >> 6] >> (i & 63)) & 1) != 0 : SparseMask.InRange(MathF.Abs(d), start + i, low, high));
            float m = keep ? d * (elementScale.IsEmpty ? scale : elementScale[i]) : 0f;
            float weighted = m * weight;
            sum[i] += basis switch
            {
                ElectionBasis.Unweighted => m,
                ElectionBasis.Weighted => weighted,
                _ => MathF.Sign(weighted),
            };
            max[i] = first ? m : MathF.Max(max[i], m);
            min[i] = first ? m : MathF.Min(min[i], m);
            x[i] = weighted;
        }
        return ss;
    }

    /// <summary>
    /// The TIES disjoint merge of one chunk, written into <paramref name="b"/>: per element the elected sign is +
    /// where <c>sum &gt; 0</c> (or = 0 with <paramref name="tieSign"/> &gt; 0), − where &lt; 0; model i agrees where
    /// <c>sign(D_i · flip_i)</c> equals it (zeros never agree); <c>mixed = Σ agree D_i</c>,
    /// <c>divisor = Σ agree w_i</c> (or the count; 0 → 1, then at least <paramref name="divisorFloor"/> when that is positive);
    /// <c>b += λ · (normalize ? mixed / divisor : mixed)</c>.
    /// Returns the number of elements where the masked deltas have both signs (from <paramref name="max"/>/<paramref name="min"/>).
    /// </summary>
    public static long Combine(float[][] d, int m, Span<float> b, ReadOnlySpan<float> sum, ReadOnlySpan<float> weights, ReadOnlySpan<float> flip,
        float tieSign, bool countDivisor, bool normalize, float lambda, float divisorFloor, ReadOnlySpan<float> max, ReadOnlySpan<float> min)
    {
        int n = b.Length, j = 0, w = Vector<float>.Count;
        long conflicts = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var zero = Vector<float>.Zero;
            var one = Vector<float>.One;
            var vLambda = new Vector<float>(lambda);
            var vFloor = new Vector<float>(divisorFloor);
            var cnt = Vector<int>.Zero;
            for (; j <= n - w; j += w)
            {
                var s = new Vector<float>(sum.Slice(j, w));
                var pos = Vector.GreaterThan(s, zero) | (tieSign > 0 ? Vector.Equals(s, zero) : Vector<int>.Zero);
                var neg = Vector.LessThan(s, zero) | (tieSign < 0 ? Vector.Equals(s, zero) : Vector<int>.Zero);
                var mix = zero;
                var div = zero;
                for (int i = 0; i < m; i++)
                {
                    var di = new Vector<float>(d[i], j);
                    var basis = flip[i] > 0 ? di : -di;
                    var agree = (pos & Vector.GreaterThan(basis, zero)) | (neg & Vector.LessThan(basis, zero));
                    mix += Vector.ConditionalSelect(agree, di, zero);
                    div += Vector.ConditionalSelect(agree, new Vector<float>(countDivisor ? 1f : weights[i]), zero);
                }
                div = Vector.ConditionalSelect(Vector.Equals(div, zero), one, div);
                if (divisorFloor > 0) div = Vector.Max(div, vFloor);
                if (normalize) mix /= div;
                (new Vector<float>(b.Slice(j, w)) + vLambda * mix).CopyTo(b.Slice(j, w));
                cnt -= Vector.GreaterThan(new Vector<float>(max.Slice(j, w)), zero) & Vector.LessThan(new Vector<float>(min.Slice(j, w)), zero);
            }
            conflicts = Vector.Sum(cnt);
        }
        for (; j < n; j++)
        {
            var (mix, div) = CombineElement(d, m, j, sum[j], weights, flip, tieSign, countDivisor);
            if (divisorFloor > 0) div = MathF.Max(div, divisorFloor);
            b[j] += lambda * (normalize ? mix / div : mix);
            if (max[j] > 0 && min[j] < 0) conflicts++;
        }
        return conflicts;
    }

    /// <summary>The scalar definition of one element of <see cref="Combine"/> (before normalisation): (mixed, divisor).</summary>
    public static (float Mixed, float Divisor) CombineElement(float[][] d, int m, int j, float sum, ReadOnlySpan<float> weights, ReadOnlySpan<float> flip,
        float tieSign, bool countDivisor)
    {
        float mix = 0, div = 0;
        int elected = sum > 0 ? 1 : sum < 0 ? -1 : Math.Sign(tieSign);
        for (int i = 0; i < m; i++)
        {
            float di = d[i][j];
            if (elected != 0 && MathF.Sign(flip[i] > 0 ? di : -di) == elected)
            {
                mix += di;
                div += countDivisor ? 1f : weights[i];
            }
        }
        return (mix, div == 0 ? 1f : div);
    }

    /// <summary>Scalar reference of <see cref="Prepare"/> for tests (same contract).</summary>
    public static double PrepareReference(Span<float> x, ReadOnlySpan<float> b, long start, SparseMask? mask, float weight,
        Span<float> sum, ElectionBasis basis, Span<float> max, Span<float> min, bool first)
    {
        double ss = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float d = x[i] - b[i];
            ss += (double)d * d;
            bool keep = mask is null || mask.IsAll || (mask.Bits is not null ? mask.Bits.Get(start + i) : SparseMask.InRange(MathF.Abs(d), start + i, mask.Low, mask.High));
            float m = keep ? d * (mask?.ElementScale is { } es ? es.Slice(start + i, 1)[0] : mask?.Scale ?? 1f) : 0f;
            float weighted = m * weight;
            sum[i] += basis == ElectionBasis.Unweighted ? m : basis == ElectionBasis.Weighted ? weighted : MathF.Sign(weighted);
            max[i] = first ? m : MathF.Max(max[i], m);
            min[i] = first ? m : MathF.Min(min[i], m);
            x[i] = weighted;
        }
        return ss;
    }

    /// <summary>Effectively computes <c>Σ |d[j]|</c> over the elements whose bit is set in <paramref name="words"/> (FP64 across blocks).</summary>
    public static double MaskedSumOfMagnitudes(ReadOnlySpan<float> d, ReadOnlySpan<ulong> words)
    {
        double total = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<float>.Count == 8)
        {
            var acc = Vector<float>.Zero;
            int block = 0;
            for (; i <= d.Length - 8; i += 8)
            {
                int byteValue = (int)((words[i >> 6] >> (i & 63)) & 0xFF);
                acc += Vector.ConditionalSelect(ByteMasks[byteValue], Vector.Abs(new Vector<float>(d.Slice(i, 8))), Vector<float>.Zero);
                if (++block == 128)
                {
                    total += Vector.Sum(acc);
                    acc = Vector<float>.Zero;
                    block = 0;
                }
            }
            total += Vector.Sum(acc);
        }
        for (; i < d.Length; i++)
            if (((words[i >> 6] >> (i & 63)) & 1) != 0) total += MathF.Abs(d[i]);
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Sign(Vector<float> v) =>
        Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<float>.Zero), Vector<float>.One, Vector<float>.Zero)
        - Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), Vector<float>.One, Vector<float>.Zero);

    private static Vector<int>[] BuildByteMasks()
    {
        var table = new Vector<int>[256];
        if (Vector<int>.Count != 8) return table;
        Span<int> lanes = stackalloc int[8];
        for (int v = 0; v < 256; v++)
        {
            for (int j = 0; j < 8; j++) lanes[j] = (v >> j & 1) != 0 ? -1 : 0;
            table[v] = new Vector<int>(lanes);
        }
        return table;
    }
}
