using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>How a task vector is sparsified (mergekit <c>sparsify.py</c>, spec §1.7).</summary>
public enum SparsifyMethod
{
    None,

    /// <summary>Keep the <c>int(density n)</c> largest |delta| (TIES trim).</summary>
    Magnitude,

    /// <summary>Keep each element with probability density (DARE).</summary>
    Bernoulli,

    /// <summary>Drop the <c>int(gamma n)</c> largest and the smallest so that <c>int(density n)</c> remain (Model Breadcrumbs).</summary>
    MagnitudeOutliers,

    /// <summary>Keep with probability rising linearly with the |delta| rank in its row, from density-epsilon to density+epsilon (DELLA MagPrune).</summary>
    DellaMagprune,
}

/// <summary>How kept values are rescaled after sparsification (spec §1.7, §2.4, §2.6: the references disagree).</summary>
public enum RescaleMode
{
    /// <summary>Multiply by <c>‖delta‖₁ / ‖mask ⊙ delta‖₁</c> (mergekit since a2dda31, Feb 2025); no scaling when either norm is below 1e-7.</summary>
    L1Norm,

    /// <summary>Divide by the density (DARE paper, mergekit before a2dda31; MergeLM divides by 1 - drop rate, the same thing).</summary>
    InverseDensity,

    /// <summary>Divide each kept element by its own keep probability (DELLA paper, mergekit's old <c>rank_magnitude</c>).</summary>
    InverseProbability,
}

/// <summary>Which of several equal |delta| values at a top-k boundary are kept.</summary>
public enum TopKTies
{
    /// <summary>Exactly k are kept; among equal values at the boundary the order is by element index (mergekit keeps exactly k, in sort order).</summary>
    Exact,

    /// <summary>Every value equal to the threshold is kept, so slightly more than k may survive (MergeLLM's <c>&gt;= kthvalue</c>).</summary>
    KeepAll,
}

/// <summary>Breadcrumbs' keep slice when <c>int(gamma n) == 0</c> (spec §1.7 quirk).</summary>
public enum BreadcrumbsSlice
{
    /// <summary>Keep ascending positions [n_bot, n - n_top): with n_top = 0 the largest values are kept (the intended behaviour).</summary>
    Intended,

    /// <summary>mergekit's code: <c>indices[n_bot:-n_top]</c>, which keeps nothing when n_top = 0.</summary>
    Mergekit,
}

/// <summary>One model's sparsification settings on one tensor.</summary>
public sealed record SparsifySettings(SparsifyMethod Method, double Density, double Gamma, double Epsilon, bool Rescale, RescaleMode RescaleMode,
    TopKTies Ties, BreadcrumbsSlice Slice)
{
    /// <summary>True when this model's delta is used as is.</summary>
    public bool Trivial => Method == SparsifyMethod.None || Density >= 1;
}

/// <summary>
/// Builds the <see cref="SparseMask"/> of every model of one tensor in as few passes as possible: one joint
/// order-statistics pass for the magnitude-based sparsifiers, one joint pass drawing the Bernoulli masks, one
/// row-wise pass for DELLA. Deltas are produced on the fly by the caller (nothing is materialised except bit
/// masks and, for <see cref="RescaleMode.InverseProbability"/>, the per-element factors).
/// </summary>
public static class Sparsify
{
    private const double NormEpsilon = 1e-7;

    /// <param name="count">Elements of the tensor.</param>
    /// <param name="rowLength">Length of a row for DELLA (the last dimension; the whole tensor for 1-D).</param>
    /// <param name="settings">Per model.</param>
    /// <param name="deltas">Fills scratch buffers 0..M-1 with each model's delta for a range.</param>
    /// <param name="random">Counter-based stream per model.</param>
    /// <param name="allocate">Allocates a per-element factor buffer (inverse-probability mode).</param>
    /// <param name="guard">Receives a note when a guard fires.</param>
    /// <param name="ct">Cancellation, checked between chunks.</param>
    /// <param name="absDeltas">Optionally a producer of |delta| directly (faster than deltas followed by Abs).</param>
    public static SparseMask[] Build(long count, long rowLength, IReadOnlyList<SparsifySettings> settings, ChunkProducer deltas,
        Func<int, CounterRandom> random, Func<long, Methods.FloatBuffer> allocate, Action<string> guard, CancellationToken ct, ChunkProducer? absDeltas = null)
    {
        int m = settings.Count;
        var masks = new SparseMask[m];
        var byMethod = Enumerable.Range(0, m).Where(i => !settings[i].Trivial).GroupBy(i => settings[i].Method).ToDictionary(g => g.Key, g => g.ToList());
        for (int i = 0; i < m; i++)
            if (settings[i].Trivial) masks[i] = SparseMask.All(count);

        var ranked = new List<int>();
        if (byMethod.TryGetValue(SparsifyMethod.Magnitude, out var mag)) ranked.AddRange(mag);
        if (byMethod.TryGetValue(SparsifyMethod.MagnitudeOutliers, out var bc)) ranked.AddRange(bc);
        if (ranked.Count > 0) BuildRanked(count, ranked, settings, absDeltas ?? AbsOf(deltas, ranked), masks, guard, ct);
        if (byMethod.TryGetValue(SparsifyMethod.Bernoulli, out var dare)) BuildBernoulli(count, dare, settings, absDeltas ?? deltas, random, masks, guard, ct);
        if (byMethod.TryGetValue(SparsifyMethod.DellaMagprune, out var della)) BuildDella(count, rowLength, della, settings, absDeltas ?? AbsOf(deltas, della), random, allocate, masks, guard, ct);
        return masks;
    }

    // ---- magnitude top-k and breadcrumbs: key ranges from exact order statistics ----

    private static ChunkProducer AbsOf(ChunkProducer deltas, List<int> models) => (start, length, sc) =>
    {
        deltas(start, length, sc);
        foreach (int i in models)
        {
            var d = sc.Get(i, length);
            TensorPrimitives.Abs(d, d);
        }
    };

    private static void BuildRanked(long n, List<int> models, IReadOnlyList<SparsifySettings> settings, ChunkProducer abs, SparseMask[] masks,
        Action<string> guard, CancellationToken ct)
    {
        int m = settings.Count;
        // Per model: which ascending ranks bound the kept range (lowRank..highRank inclusive), or empty.
        var plan = new (long LowRank, long HighRank, bool Empty)[m];
        var ranks = new List<long>[m];
        for (int i = 0; i < m; i++) ranks[i] = [];
        foreach (int i in models)
        {
            var s = settings[i];
            long lowRank, highRank;
            bool empty = false;
            if (s.Method == SparsifyMethod.Magnitude)
            {
                long k = (long)(s.Density * n);
                if (k == 0)
                {
                    // mergekit asserts k > 0 ("not gonna zero out the whole tensor"); keep the single largest instead of failing.
                    k = 1;
                    guard($"density {s.Density} keeps int(density*{n}) = 0 elements; kept the largest one");
                }
                lowRank = n - k;
                highRank = n - 1;
            }
            else
            {
                long target = (long)(s.Density * n), nTop = (long)(s.Gamma * n), nBot = n - target - nTop;
                if (nBot < 0)
                {
                    nTop += nBot;
                    nBot = 0;
                }
                lowRank = nBot;
                highRank = n - nTop - 1;
                if (s.Slice == BreadcrumbsSlice.Mergekit && nTop == 0)
                {
                    empty = true;
                    guard("breadcrumbs_slice: mergekit with int(gamma*n) = 0 keeps nothing (mergekit's indices[n_bot:-0] quirk)");
                }
                if (highRank < lowRank) empty = true;
            }
            plan[i] = (lowRank, highRank, empty);
            if (empty) continue;
            ranks[i].Add(lowRank);
            if (highRank < n - 1 && highRank != lowRank) ranks[i].Add(highRank);
            if (s.Rescale && !ranks[i].Contains(n - 1)) ranks[i].Add(n - 1); // the maximum's "sum less" gives the total L1 norm
        }

        var selection = ranks.Any(r => r.Count > 0)
            ? OrderStatistics.Select(n, m, ranks.Select(r => (IReadOnlyList<long>)r).ToList(), abs, 0x5EED_0F_5E1EC7UL ^ (ulong)n, ct,
                sums: models.Any(i => settings[i].Rescale))
            : null;

        foreach (int i in models)
        {
            var s = settings[i];
            var (lowRank, highRank, empty) = plan[i];
            if (empty)
            {
                masks[i] = SparseMask.Range(n, MaskKey.Max, MaskKey.Min, 0);
                continue;
            }
            var found = selection!.Results[i].ToDictionary(r => r.Rank);
            var lo = found[lowRank];
            var low = lo.Less == lowRank || s.Ties == TopKTies.KeepAll
                ? new MaskKey(lo.Value, long.MinValue)
                : new MaskKey(lo.Value, selection.IndexOfEqual(i, lowRank, lowRank - lo.Less));
            var high = MaskKey.Max;
            long keptHighEnd = n; // elements with key <= High
            if (highRank < n - 1)
            {
                var hi = found[highRank];
                bool lastEqual = highRank == hi.Less + hi.Equal - 1;
                high = lastEqual || s.Ties == TopKTies.KeepAll
                    ? new MaskKey(hi.Value, long.MaxValue)
                    : new MaskKey(hi.Value, selection.IndexOfEqual(i, highRank, highRank - hi.Less));
                keptHighEnd = high.Index == long.MaxValue ? hi.Less + hi.Equal : highRank + 1;
            }
            long droppedLow = low.Index == long.MinValue ? lo.Less : lowRank;
            var mask = SparseMask.Range(n, low, high, keptHighEnd - droppedLow);
            if (s.Rescale)
            {
                var top = found[n - 1];
                double total = top.SumLess + (double)top.Value * (n - top.Less);
                double sumBelowLow = lo.SumLess + (double)lo.Value * (droppedLow - lo.Less);
                double sumUpToHigh = total;
                if (highRank < n - 1)
                {
                    var hi = found[highRank];
                    sumUpToHigh = hi.SumLess + (double)hi.Value * (keptHighEnd - hi.Less);
                }
                mask.Scale = RescaleFactor(s, total, sumUpToHigh - sumBelowLow, guard);
            }
            masks[i] = mask;
        }
    }

    // ---- DARE: Bernoulli(density) per element from the counter-based stream ----

    /// <remarks>
    /// Only the magnitudes of the deltas matter here (Σ|Δ| and the kept Σ|Δ|), so <paramref name="deltas"/> may produce
    /// them signed or as |Δ|: the sums of magnitudes are bit-identical either way.
    /// </remarks>
    private static void BuildBernoulli(long n, List<int> models, IReadOnlyList<SparsifySettings> settings, ChunkProducer deltas,
        Func<int, CounterRandom> random, SparseMask[] masks, Action<string> guard, CancellationToken ct)
    {
        var bits = models.ToDictionary(i => i, _ => new BitMask(n));
        var rngs = models.ToDictionary(i => i, i => new UniformStream(random(i)));
        // Per model: kept count, Σ|Δ|, Σ|Δ| over kept.
        var sums = Chunked.Reduce(n, 3 * models.Count, ct, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            for (int k = 0; k < models.Count; k++)
            {
                int i = models[k];
                var d = sc.Get(i, length);
                var words = bits[i].Words(start, length);
                double keptSum = FillBernoulli(rngs[i], start, KeepThreshold(settings[i].Density), d, words);
                long kept = 0;
                foreach (var w in words) kept += (long)ulong.PopCount(w);
                acc[3 * k] += kept;
                acc[3 * k + 1] += TensorPrimitives.SumOfMagnitudes(d);
                acc[3 * k + 2] += keptSum;
            }
        });
        for (int k = 0; k < models.Count; k++)
        {
            int i = models[k];
            var mask = SparseMask.FromBits(bits[i], (long)sums[3 * k]);
            var s = settings[i];
            if (s.Rescale)
                mask.Scale = s.RescaleMode == RescaleMode.InverseDensity ? (float)(1 / s.Density) : RescaleFactor(s, sums[3 * k + 1], sums[3 * k + 2], guard);
            masks[i] = mask;
        }
    }

    /// <summary>The 32-bit threshold t with P(u &lt; t) = p for a uniform 32-bit u (p in [0, 1)).</summary>
    public static uint KeepThreshold(double p) => p <= 0 ? 0u : p >= 1 ? uint.MaxValue : (uint)Math.Min(uint.MaxValue, Math.Round(p * 4294967296.0));

    /// <summary>
    /// Sets bit j of <paramref name="words"/> (j &lt; <c>d.Length</c>) when the uniform draw of element <c>start + j</c>
    /// (<see cref="UniformStream.At"/>) is below <paramref name="threshold"/>, and returns
    /// <c>TaskVectorKernels.MaskedSumOfMagnitudes(d, words)</c> (bit for bit: the same F32 vector accumulator flushed to
    /// FP64 every 128 vectors). A draw depends only on its element, so the mask does not depend on how the tensor is
    /// chunked; <paramref name="start"/> is a multiple of 64. One pass: each vector's draws are made, compared, turned
    /// into keep bits and used as the lane mask of the kept |Δ| while in registers, the draws two vectors ahead of use
    /// (<see cref="UniformStream.At8Lanes"/>) and no call in the loop (a per-vector fallback for draws across a 2^32
    /// boundary spilled the loop's vectors around it): 0.7 → 0.5 ns/element, the draws alone 0.5.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe double FillBernoulli(UniformStream rng, long start, uint threshold, ReadOnlySpan<float> d, Span<ulong> words)
    {
        int n = d.Length, i = 0;
        if ((start & 63) != 0) throw new ArgumentException("start must be a multiple of 64", nameof(start));
        if (words.Length < (n + 63) / 64) throw new ArgumentException("words needs (d.Length + 63) / 64 entries", nameof(words));
        words[..((n + 63) / 64)].Clear();
        double total = 0;
        if (Vector.IsHardwareAccelerated && Vector<float>.Count == 8)
        {
            // u < t as signed compares of both sides biased by 2^31 (AVX2 has no unsigned compare).
            var t = (Vector256.Create(threshold) ^ Vector256.Create(0x8000_0000u)).AsInt32();
            var acc = Vector256<float>.Zero;
            int block = 0;
            ulong bits = 0;
            // Segments of elements sharing their high 32 bits (a 2^32 boundary is a multiple of 64 elements from start,
            // so no vector straddles one): the draws eight at a time with that segment's keys, no call in the loop.
            fixed (float* dp = d)
            {
                while (i <= n - 8)
                {
                    var keys = rng.Keys8(start + i);
                    int end = i + (UniformStream.SameHighWord(start + i, n - i) & ~7);
                    // The draws two vectors ahead of their use (see UniformStream.At8Lanes): low counts for element i + 16.
                    var low = UniformStream.Counters8(start + i);
                    var u0 = UniformStream.At8Lanes(low, keys);
                    var u1 = UniformStream.At8Lanes(low + Vector256.Create(8u), keys);
                    low += Vector256.Create(16u);
                    for (; i < end; i += 8)
                    {
                        var u = u0;
                        u0 = u1;
                        u1 = UniformStream.At8Lanes(low, keys);
                        low += Vector256.Create(8u);
                        var keep = Vector256.GreaterThan(t, (u ^ Vector256.Create(0x8000_0000u)).AsInt32());
                        bits |= (ulong)Vector256.ExtractMostSignificantBits(keep) << (i & 63);
                        if ((i & 63) == 56)
                        {
                            words[i >> 6] = bits;
                            bits = 0;
                        }
                        acc += (Vector256.Load((int*)dp + i) & Vector256.Create(0x7FFF_FFFF) & keep).AsSingle(); // the kept |Δ|, 0 elsewhere
                        if (++block == 128)
                        {
                            total += Vector.Sum(acc.AsVector());
                            acc = Vector256<float>.Zero;
                            block = 0;
                        }
                    }
                }
            }
            total += Vector.Sum(acc.AsVector());
            if ((i & 63) != 0) words[i >> 6] = bits;
        }
        for (; i < n; i++)
            if (rng.At(start + i) < threshold)
            {
                words[i >> 6] |= 1UL << (i & 63);
                total += MathF.Abs(d[i]);
            }
        return total;
    }

    // ---- DELLA MagPrune: per-row rank-based keep probabilities ----

    /// <remarks>
    /// DELLA needs only |Δ|, so the rows come from the magnitude producer (|x − b| in one pass, a block of rows per call) and every per-row
    /// reduction reads that buffer: the decisions with the kept Σ|Δ| and the row's Σ|Δ| (<see cref="DellaRow.Decide"/>,
    /// F32 partial sums into FP64, tested against FP64 sums) and, for inverse-probability rescaling, the ranks.
    /// </remarks>
    private static void BuildDella(long n, long rowLength, List<int> models, IReadOnlyList<SparsifySettings> settings, ChunkProducer absDeltas,
        Func<int, CounterRandom> random, Func<long, Methods.FloatBuffer> allocate, SparseMask[] masks, Action<string> guard, CancellationToken ct)
    {
        long rows = n / rowLength, cols = rowLength;
        if (cols == 1) guard("DELLA rows of one element: rank probability (rank-1)/(cols-1) is 0/0; used the density");
        var bits = models.ToDictionary(i => i, _ => new BitMask(n));
        var rngs = models.ToDictionary(i => i, i => new UniformStream(random(i)));
        var scales = models.ToDictionary(i => i, i => settings[i].Rescale && settings[i].RescaleMode == RescaleMode.InverseProbability ? allocate(n) : null);
        bool rowAligned = cols % 64 == 0 || rows == 1;
        // Rows starting on a 64-bit word boundary own their words and write them whole; other rows set bits atomically.
        var sums = Chunked.ReduceRows(rows, cols, 3 * models.Count, ct, (r0, rowCount, sc, acc) =>
        {
            var ws = Ranking.Workspace.ForCurrentThread();
            // The block's magnitudes in one call: a block is one whole grid chunk when the row length divides the chunk
            // size, so a producer that checks its chunks (MethodHelpers.BFloat16Magnitudes) can mark them for the merge pass.
            int blockLength = (int)(rowCount * cols);
            absDeltas(r0 * cols, blockLength, sc);
            for (long r = r0; r < r0 + rowCount; r++)
            {
                long start = r * cols;
                int len = (int)cols;
                for (int k = 0; k < models.Count; k++)
                {
                    int i = models[k];
                    var s = settings[i];
                    var a = sc.Get(i, blockLength).Slice((int)((r - r0) * cols), len);
                    var scaleBuffer = scales[i];
                    // p = density − ε + 2ε·rank/(cols − 1), compared as 32-bit thresholds with the uniform draw.
                    double pBase = cols == 1 ? s.Density : s.Density - s.Epsilon, pStep = cols == 1 ? 0 : 2 * s.Epsilon / (cols - 1);
                    var prob = DellaRow.Probability.Of(pBase, pStep);
                    // Decisions without ranking the row (DellaRow): rows starting on a word boundary write their words in place.
                    var words = rowAligned ? bits[i].Words(start, len) : WordBuffer((len + 63) / 64);
                    long kept = DellaRow.Decide(a, start, rngs[i], prob, words, out double keptSum, out double rowSum);
                    if (!rowAligned)
                        for (int j = 0; j < len; j++)
                            if ((words[j >> 6] >> (j & 63) & 1) != 0) SetBit(bits[i], start + j);
                    if (scaleBuffer is not null)
                    {
                        // Inverse keep probabilities need every element's exact rank (the decisions above do not).
                        var rank = RankBuffer(len);
                        var scale = scaleBuffer.Slice(start, len);
                        Ranking.AscendingRanks(a, rank, ws);
                        for (int j = 0; j < len; j++)
                            scale[j] = (words[j >> 6] >> (j & 63) & 1) != 0 ? (float)(1 / (pBase + pStep * rank[j])) : 0f;
                    }
                    // Σ|Δ| and the kept Σ|Δ| (taken as Decide reads the row) only feed the L1 rescale factor.
                    acc[3 * k] += kept;
                    acc[3 * k + 1] += rowSum;
                    acc[3 * k + 2] += keptSum;
                }
            }
        });
        for (int k = 0; k < models.Count; k++)
        {
            int i = models[k];
            var s = settings[i];
            var mask = SparseMask.FromBits(bits[i], (long)sums[3 * k]);
            if (s.Rescale)
            {
                if (s.RescaleMode == RescaleMode.InverseProbability) mask.ElementScale = scales[i];
                else if (s.RescaleMode == RescaleMode.InverseDensity) mask.Scale = (float)(1 / s.Density);
                else mask.Scale = RescaleFactor(s, sums[3 * k + 1], sums[3 * k + 2], guard);
            }
            masks[i] = mask;
        }
    }

    [ThreadStatic]
    private static int[]? _rankBuffer;

    [ThreadStatic]
    private static ulong[]? _wordBuffer;

    private static Span<ulong> WordBuffer(int length)
    {
        if (_wordBuffer is null || _wordBuffer.Length < length) _wordBuffer = new ulong[length];
        return _wordBuffer.AsSpan(0, length);
    }

    private static Span<int> RankBuffer(int length)
    {
        if (_rankBuffer is null || _rankBuffer.Length < length) _rankBuffer = new int[length];
        return _rankBuffer.AsSpan(0, length);
    }

    /// <summary>Sets one bit atomically (rows that do not start on a word boundary share words with their neighbours).</summary>
    private static void SetBit(BitMask bits, long e) => bits.SetAtomic(e);

    /// <summary>mergekit's <c>rescaled_masked_tensor</c> with L1 norms: <c>before/after</c>, or 1 when either is below 1e-7.</summary>
    private static float RescaleFactor(SparsifySettings s, double before, double after, Action<string> guard)
    {
        if (s.RescaleMode == RescaleMode.InverseDensity) return (float)(1 / s.Density);
        if (before < NormEpsilon || after < NormEpsilon)
        {
            if (before >= NormEpsilon) guard("L1 rescale: nothing kept (norm below 1e-7), no rescaling");
            return 1f;
        }
        return (float)(before / after);
    }
}
