using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// DELLA's keep decisions for one row without sorting it: element j is kept when its uniform 32-bit draw is below
/// <c>threshold(rank_j)</c>, where rank_j is its stable ascending rank of |Δ| in the row and the threshold rises
/// linearly with the rank. The threshold is monotone, so knowing that rank_j lies in [lo, hi] decides every draw
/// outside [threshold(lo), threshold(hi)); a histogram of the (order-preserving) keys with about one bin per four
/// elements, spread over the top binades of the row's magnitudes, gives each element such an interval in one pass, and
/// only the few undecided elements get their exact rank within their bin (counted, found among equal keys by position,
/// or from the bin sorted once). One vectorised pass makes the draws and compares each with the two thresholds of its
/// element's bin (gathered by bin index), so no draw is stored and no candidate list is built; the draws between
/// threshold(0) and threshold(n − 1) (about 2ε of the row) are the only ones that can stay undecided.
/// The decisions are exactly those of computing every rank (<see cref="Reference"/>), at a fraction of the cost.
/// </summary>
public static class DellaRow
{
    private const int MaxBins = 8192;

    /// <summary>Per-thread work arrays.</summary>
    public sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? _current;

        internal uint[] Keys = [], Draws = [];
        internal readonly uint[] Low = new uint[MaxBins], High = new uint[MaxBins];
        internal int[] Members = [];
        internal readonly int[] Count = new int[MaxBins + 1], Start = new int[MaxBins + 1];
        internal readonly int[] Counts4 = new int[4 * MaxBins];
        internal int[] Undecided = [];
        internal int[] BinOf = [];
        internal readonly byte[] BinState = new byte[MaxBins]; // 0 not ranked yet, 1 every member ranked in BinRank
        internal int[] BinRank = [];
        internal ulong[] Packed = [];
        internal readonly int[] Last = new int[MaxBins];
        internal int Bins, Shift;
        internal uint Lo;

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (Keys.Length >= n) return;
            Keys = new uint[n];
            Draws = new uint[n];
            BinRank = new int[n];
            Members = new int[n];
            Undecided = new int[n];
            Packed = new ulong[n];
            BinOf = new int[n];
        }
    }

    /// <summary>
    /// Keep probability p(rank) = pBase + pStep · rank in 64-bit fixed point (p · 2^64), for integer-only thresholds.
    /// Needs pBase + pStep · (cols − 1) &lt; 1, which DELLA's validation guarantees (density + ε &lt; 1).
    /// </summary>
    public readonly record struct Probability(ulong Base, ulong Step)
    {
        public static Probability Of(double pBase, double pStep) => new(ToFixed(pBase), ToFixed(pStep));

        private static ulong ToFixed(double p) => p <= 0 ? 0 : p >= 1 ? ulong.MaxValue : (ulong)(p * 18446744073709551616.0);
    }

    /// <summary>The 32-bit keep threshold for rank r: the top half of <c>Base + Step · r</c>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static uint Threshold(Probability p, int rank) => (uint)((p.Base + p.Step * (ulong)rank) >> 32);

    /// <summary>The uniform draw of element <paramref name="e"/> (the same stream DARE's masks use).</summary>
    public static uint Draw(UniformStream rng, long e) => rng.At(e);

    /// <summary>
    /// Effectively computes bit j of <paramref name="keep"/> (words of 64, bit j of the row in word j / 64) as
    /// <c>Draw(start + j) &lt; Threshold(rank_j)</c> for non-negative <paramref name="values"/> (rank: stable ascending,
    /// ties by index). Returns the number kept.
    /// </summary>
    public static int Decide(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<ulong> keep, Workspace ws)
    {
        int n = values.Length;
        if (keep.Length < (n + 63) / 64) throw new ArgumentException("keep needs (n + 63) / 64 words", nameof(keep));
        ws.Ensure(n);
        var keys = KeysOf(values, ws, out uint min, out uint max);
        keep[..((n + 63) / 64)].Clear();
        if (min == max)
        {
            // All equal: ranks are the indices.
            var draws = ws.Draws.AsSpan(0, n);
            rng.Fill(start, draws);
            for (int j = 0; j < n; j++) keep[j >> 6] |= (draws[j] < Threshold(p, j) ? 1UL : 0UL) << (j & 63);
            return Count(keep, n);
        }
        // Bins cover the top LowBinades binades below the maximum (keys are float bits, so a binade is 2^23 keys);
        // everything smaller, zeros included, shares bin 0. Magnitudes crowd near the top in log scale, so spreading
        // bins linearly over the full key range from the minimum would leave most bins empty and the top ones crowded.
        uint lo = max - min > LowBinades << 23 ? max - (LowBinades << 23) : min;
        int binBits = Math.Clamp(BitOperations.Log2((uint)n) - 2, 7, 13);
        int rangeBits = 32 - BitOperations.LeadingZeroCount(max - lo);
        int shift = Math.Max(0, rangeBits - binBits);
        int bins = (int)((max - lo) >> shift) + 1;
        ws.Bins = bins;
        ws.Lo = lo;
        ws.Shift = shift;
        var first = ws.Start.AsSpan(0, bins + 1);
        var binOf = ws.BinOf.AsSpan(0, n);
        BinsOf(keys, lo, shift, binOf);
        Histogram(binOf, bins, ws);
        // Per bin, its first rank and the thresholds at its lowest and highest possible rank (empty bins get harmless
        // values: no element looks them up).
        var low = ws.Low.AsSpan(0, bins);
        var high = ws.High.AsSpan(0, bins);
        var last = ws.Last.AsSpan(0, bins);
        FirstAndLastRanks(ws.Counts4.AsSpan(0, 4 * bins), bins, first, last);
        first[bins] = n;
        Thresholds(p, first[..bins], low);
        Thresholds(p, last, high);
        // Each draw against its element's bin: below the threshold of the bin's lowest rank it keeps, at or above that of
        // its highest rank it drops, in between it stays undecided (only the exact rank tells). Thresholds rise with the
        // rank, so this decides every draw below threshold(0) and at or above threshold(n − 1) as well.
        var undecidedAll = ws.Undecided.AsSpan(0, n);
        var undecidedDraws = ws.Draws.AsSpan(0, n);
        int open = DecideByBins(rng, start, binOf, low, high, keep, undecidedAll, undecidedDraws);
        var undecided = undecidedAll[..open];
        if (undecided.Length > n / 16)
        {
            // Many undecided (heavy ties make big bins): rank the whole row once instead.
            var ranks = ws.BinRank.AsSpan(0, n);
            Ranking.AscendingRanks(values, ranks, Ranking.Workspace.ForCurrentThread());
            for (int q = 0; q < open; q++)
            {
                int j = undecided[q];
                if (undecidedDraws[q] < Threshold(p, ranks[j])) keep[j >> 6] |= 1UL << (j & 63);
            }
        }
        else if (undecided.Length <= DirectRankLimit)
        {
            // A few undecided (the usual case): each one's stable rank by one vectorised count over the row, cheaper
            // than bucketing the whole row by bin.
            for (int q = 0; q < open; q++)
            {
                int j = undecided[q];
                if (undecidedDraws[q] < Threshold(p, StableRank(keys, j))) keep[j >> 6] |= 1UL << (j & 63);
            }
        }
        else ResolveUndecided(keys, undecided, undecidedDraws[..open], p, keep, ws);
        return Count(keep, n);
    }

    /// <summary>Keys below <c>max − LowBinades binades</c> share the lowest bin (as many binades as a magnitude usually needs).</summary>
    private const uint LowBinades = 6;

    /// <summary>Effectively computes <c>bins[j] = BinOf(keys[j], lo, shift)</c>, eight at a time.</summary>
    internal static unsafe void BinsOf(ReadOnlySpan<uint> keys, uint lo, int shift, Span<int> bins)
    {
        int n = keys.Length, j = 0;
        if (bins.Length < n) throw new ArgumentException("bins shorter than keys", nameof(bins));
        fixed (uint* k = keys)
        fixed (int* b = bins)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var vLo = Vector256.Create(lo);
                for (; j <= n - 8; j += 8)
                    Vector256.ShiftRightLogical(Vector256.Max(Vector256.Load(k + j), vLo) - vLo, shift).AsInt32().Store(b + j);
            }
            for (; j < n; j++) b[j] = BinOf(k[j], lo, shift);
        }
    }

    /// <summary>
    /// Per-bin counts of <paramref name="binOf"/> as four interleaved partial histograms in <c>ws.Counts4</c>: BF16
    /// deltas repeat a few values, and one counter incremented by neighbouring elements would chain every increment
    /// on the previous store. Every bin index is below <paramref name="bins"/> (by construction of the binning).
    /// </summary>
    private static unsafe void Histogram(ReadOnlySpan<int> binOf, int bins, Workspace ws)
    {
        var c = ws.Counts4.AsSpan(0, 4 * bins);
        c.Clear();
        int n = binOf.Length, j = 0;
        fixed (int* cp = c)
        fixed (int* bp = binOf)
        {
            int* c1 = cp + bins, c2 = cp + 2 * bins, c3 = cp + 3 * bins;
            for (; j <= n - 4; j += 4)
            {
                cp[bp[j]]++;
                c1[bp[j + 1]]++;
                c2[bp[j + 2]]++;
                c3[bp[j + 3]]++;
            }
            for (; j < n; j++) cp[bp[j]]++;
        }
    }

    /// <summary>
    /// From the four partial histograms <paramref name="counts4"/>: <c>first[b]</c> = elements in bins below b, and
    /// <c>last[b] = max(first[b], first[b] + count[b] − 1)</c> (the highest rank in bin b; first[b] when it is empty).
    /// </summary>
    private static void FirstAndLastRanks(Span<int> counts4, int bins, Span<int> first, Span<int> last)
    {
        // Totals into the first partial histogram, eight bins at a time.
        var c0 = counts4[..bins];
        var c1 = counts4.Slice(bins, bins);
        var c2 = counts4.Slice(2 * bins, bins);
        var c3 = counts4.Slice(3 * bins, bins);
        int b = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; b <= bins - 8; b += 8)
                (Vector256.Create(c0.Slice(b, 8)) + Vector256.Create(c1.Slice(b, 8)) + Vector256.Create(c2.Slice(b, 8)) + Vector256.Create(c3.Slice(b, 8)))
                    .CopyTo(c0.Slice(b, 8));
        for (; b < bins; b++) c0[b] += c1[b] + c2[b] + c3[b];
        int acc = 0;
        for (b = 0; b < bins; b++)
        {
            first[b] = acc;
            acc += c0[b];
            last[b] = acc - 1;
        }
        b = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; b <= bins - 8; b += 8)
                Vector256.Max(Vector256.Create(first.Slice(b, 8)), Vector256.Create(last.Slice(b, 8))).CopyTo(last.Slice(b, 8));
        for (; b < bins; b++) last[b] = Math.Max(first[b], last[b]);
    }

    /// <summary>
    /// Effectively, for each j &lt; n = <c>binOf.Length</c> with <c>u = rng.At(start + j)</c> and <c>b = binOf[j]</c>: sets bit j
    /// of <paramref name="keep"/> when <c>u &lt; low[b]</c>, and lists j (in index order) with its draw u in
    /// <paramref name="undecided"/> / <paramref name="undecidedDraws"/> when <c>low[b] ≤ u &lt; high[b]</c>; returns their
    /// count. Keep bits of the row are ORed into <paramref name="keep"/>, which the caller has cleared. Eight elements at a
    /// time: the draws made in registers (<see cref="UniformStream.At8"/>), both thresholds gathered by bin, the keep
    /// word built in a register; only vectors with an undecided lane (a few per row) take a branch.
    /// </summary>
    internal static unsafe int DecideByBins(UniformStream rng, long start, ReadOnlySpan<int> binOf, ReadOnlySpan<uint> low, ReadOnlySpan<uint> high,
        Span<ulong> keep, Span<int> undecided, Span<uint> undecidedDraws)
    {
        int n = binOf.Length, open = 0, j = 0;
        if (keep.Length < (n + 63) / 64 || undecided.Length < n || undecidedDraws.Length < n)
            throw new ArgumentException("keep needs (n + 63) / 64 words, undecided and undecidedDraws n entries", nameof(keep));
        fixed (int* bp = binOf, up = undecided)
        fixed (uint* lp = low, hp = high, ud = undecidedDraws)
        fixed (ulong* k = keep)
        {
            if (Avx2.IsSupported)
            {
                var keys = rng.Keys8(start);
                int same = UniformStream.SameHighWord(start, n); // past it the draws change their high word: scalar
                ulong bits = 0;
                for (; j <= same - 8; j += 8)
                {
                    var u = UniformStream.At8((uint)start + (uint)j, keys);
                    var bins = Vector256.Load(bp + j);
                    var kept = Vector256.LessThan(u, Avx2.GatherVector256(lp, bins, 4));
                    bits |= (ulong)Vector256.ExtractMostSignificantBits(kept) << (j & 63);
                    if ((j & 63) == 56)
                    {
                        k[j >> 6] |= bits;
                        bits = 0;
                    }
                    uint open8 = Vector256.ExtractMostSignificantBits(Vector256.AndNot(Vector256.LessThan(u, Avx2.GatherVector256(hp, bins, 4)), kept));
                    while (open8 != 0)
                    {
                        int lane = BitOperations.TrailingZeroCount(open8);
                        up[open] = j + lane;
                        ud[open++] = u.GetElement(lane);
                        open8 &= open8 - 1;
                    }
                }
                if ((j & 63) != 0) k[j >> 6] |= bits;
            }
            for (; j < n; j++)
            {
                uint u = rng.At(start + j);
                int b = bp[j];
                k[j >> 6] |= (u < lp[b] ? 1UL : 0UL) << (j & 63);
                if (u >= lp[b] && u < hp[b])
                {
                    up[open] = j;
                    ud[open++] = u;
                }
            }
        }
        return open;
    }

    /// <summary>The bin of a key: its offset above <paramref name="lo"/> (keys below it count as <paramref name="lo"/>), shifted.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static int BinOf(uint key, uint lo, int shift) => (int)((Math.Max(key, lo) - lo) >> shift);

    /// <summary>
    /// The keys of <paramref name="values"/> (<c>bits(values[j]) &amp; 0x7FFF_FFFF</c>) with their minimum and maximum: the
    /// values' own bits when no sign bit is set (|Δ| from the magnitude producers), else a masked copy in <c>ws.Keys</c>.
    /// </summary>
    private static ReadOnlySpan<uint> KeysOf(ReadOnlySpan<float> values, Workspace ws, out uint min, out uint max)
    {
        var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(values);
        (min, max) = MinMax(bits);
        if (max <= 0x7FFF_FFFFu) return bits;
        var keys = ws.Keys.AsSpan(0, values.Length);
        (min, max) = KeysOf(values, keys);
        return keys;
    }

    /// <summary>The minimum and maximum of <paramref name="bits"/> (unsigned).</summary>
    internal static (uint Min, uint Max) MinMax(ReadOnlySpan<uint> bits)
    {
        int n = bits.Length, j = 0;
        uint min = uint.MaxValue, max = 0;
        if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            var min0 = Vector256.Create(uint.MaxValue);
            var max0 = Vector256<uint>.Zero;
            var min1 = min0;
            var max1 = max0;
            for (; j <= n - 16; j += 16)
            {
                var k0 = Vector256.Create(bits.Slice(j, 8));
                var k1 = Vector256.Create(bits.Slice(j + 8, 8));
                min0 = Vector256.Min(min0, k0);
                max0 = Vector256.Max(max0, k0);
                min1 = Vector256.Min(min1, k1);
                max1 = Vector256.Max(max1, k1);
            }
            min0 = Vector256.Min(min0, min1);
            max0 = Vector256.Max(max0, max1);
            for (int l = 0; l < 8; l++)
            {
                min = Math.Min(min, min0.GetElement(l));
                max = Math.Max(max, max0.GetElement(l));
            }
        }
        for (; j < n; j++)
        {
            min = Math.Min(min, bits[j]);
            max = Math.Max(max, bits[j]);
        }
        return (min, max);
    }

    /// <summary>
    /// Effectively computes <c>keys[j] = bits(values[j]) &amp; 0x7FFF_FFFF</c> (order-preserving for |x|; −0 is +0) and
    /// returns their minimum and maximum (the path of rows with sign bits: magnitudes need no copy).
    /// </summary>
    internal static (uint Min, uint Max) KeysOf(ReadOnlySpan<float> values, Span<uint> keys)
    {
        keys = keys[..values.Length];
        System.Numerics.Tensors.TensorPrimitives.BitwiseAnd(System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(values), 0x7FFF_FFFFu, keys);
        return MinMax(keys);
    }

    /// <summary>
    /// Effectively computes <c>destination[i] = Threshold(p, ranks[i])</c>, four at a time: <c>Step · r</c> is
    /// <c>lo32(Step) · r + (hi32(Step) · r) &lt;&lt; 32</c> (32 × 32 → 64-bit multiplies), exact modulo 2^64 like the scalar form.
    /// </summary>
    internal static void Thresholds(Probability p, ReadOnlySpan<int> ranks, Span<uint> destination)
    {
        int n = ranks.Length, i = 0;
        if (Avx2.IsSupported)
        {
            var stepLo = Vector256.Create(p.Step & 0xFFFF_FFFFUL).AsUInt32();
            var stepHi = Vector256.Create(p.Step >> 32).AsUInt32();
            var b = Vector256.Create(p.Base);
            for (; i <= n - 8; i += 8)
            {
                var r = Vector256.Create(ranks.Slice(i, 8));
                var lower = Avx2.ConvertToVector256Int64(r.GetLower()).AsUInt32();
                var upper = Avx2.ConvertToVector256Int64(r.GetUpper()).AsUInt32();
                var tl = (b + Avx2.Multiply(lower, stepLo) + (Avx2.Multiply(lower, stepHi) << 32)) >> 32;
                var tu = (b + Avx2.Multiply(upper, stepLo) + (Avx2.Multiply(upper, stepHi) << 32)) >> 32;
                Vector256.Narrow(tl, tu).CopyTo(destination.Slice(i, 8));
            }
        }
        for (; i < n; i++) destination[i] = Threshold(p, ranks[i]);
    }

    /// <summary>Most undecided elements of a row ranked one by one with <see cref="StableRank"/> (each costs a pass over the row's keys).</summary>
    private const int DirectRankLimit = 48;

    /// <summary>
    /// The stable ascending rank of element <paramref name="j"/>: <c>#{i &lt; j : key_i ≤ key_j} + #{i &gt; j : key_i &lt; key_j}</c>.
    /// Keys are below 2^31 (sign bit cleared), so signed comparisons order them.
    /// </summary>
    internal static unsafe int StableRank(ReadOnlySpan<uint> keys, int j)
    {
        var k = System.Runtime.InteropServices.MemoryMarshal.Cast<uint, int>(keys);
        int kj = k[j], n = k.Length, i = 0, rank = 0;
        // key_i <= key_j is key_i < key_j + 1 (keys are below 2^31, so key_j + 1 does not overflow).
        var below = Vector256.Create(kj + 1);
        var vk = Vector256.Create(kj);
        var a0 = Vector256<int>.Zero;
        var a1 = Vector256<int>.Zero;
        fixed (int* kp = k)
        {
            for (; i <= j - 16; i += 16)
            {
                a0 -= Vector256.GreaterThan(below, Vector256.Load(kp + i));
                a1 -= Vector256.GreaterThan(below, Vector256.Load(kp + i + 8));
            }
            for (; i < j; i++) rank += kp[i] <= kj ? 1 : 0;
            for (i = j + 1; i <= n - 16; i += 16)
            {
                a0 -= Vector256.GreaterThan(vk, Vector256.Load(kp + i));
                a1 -= Vector256.GreaterThan(vk, Vector256.Load(kp + i + 8));
            }
            for (; i < n; i++) rank += kp[i] < kj ? 1 : 0;
        }
        return rank + Vector256.Sum(a0 + a1);
    }

    private static int Count(ReadOnlySpan<ulong> keep, int n)
    {
        int c = 0;
        for (int w = 0; w < (n + 63) / 64; w++) c += BitOperations.PopCount(keep[w]);
        return c;
    }

    /// <summary>Exact ranks for the undecided elements: members of their bins (in index order), counted or sorted.</summary>
    private static void ResolveUndecided(ReadOnlySpan<uint> keys, ReadOnlySpan<int> undecided, ReadOnlySpan<uint> undecidedDraws, Probability p, Span<ulong> keep, Workspace ws)
    {
        int n = keys.Length;
        var binOf = ws.BinOf.AsSpan(0, n); // every element's bin, from the histogram pass
        // Bin members in index order (a stable counting scatter).
        int bins = ws.Bins;
        var next = ws.Count.AsSpan(0, bins); // reused as fill pointers
        for (int b = 0; b < bins; b++) next[b] = ws.Start[b];
        var members = ws.Members.AsSpan(0, n);
        for (int j = 0; j < n; j++) members[next[binOf[j]]++] = j;
        Array.Clear(ws.BinState, 0, bins);
        var binRank = ws.BinRank.AsSpan(0, n); // rank of each member, by position in members, once its bin is ranked
        for (int q = 0; q < undecided.Length; q++)
        {
            int j = undecided[q], b = binOf[j];
            int s = ws.Start[b], c = ws.Start[b + 1] - s;
            var bin = members.Slice(s, c);
            int rank;
            if (c <= 32)
            {
                int less = 0;
                uint kj = keys[j];
                foreach (int i in bin) if (keys[i] < kj || (keys[i] == kj && i < j)) less++;
                rank = s + less;
            }
            else
            {
                // Large bins (BF16 checkpoints repeat a few values many times): rank every member once. With few
                // distinct keys, count per key and hand out ranks in index order (the members are index-ordered,
                // so equal keys come out stable); otherwise sort the (key, index) pairs.
                if (ws.BinState[b] == 0)
                {
                    RankBin(bin, keys, s, binRank.Slice(s, c), ws);
                    ws.BinState[b] = 1;
                }
                rank = binRank[s + bin.BinarySearch(j)];
            }
            if (undecidedDraws[q] < Threshold(p, rank)) keep[j >> 6] |= 1UL << (j & 63);
        }
    }

    /// <summary>Ranks (offset by <paramref name="first"/>) of the index-ordered <paramref name="bin"/> members, stable by index.</summary>
    private static void RankBin(ReadOnlySpan<int> bin, ReadOnlySpan<uint> keys, int first, Span<int> ranks, Workspace ws)
    {
        Span<uint> distinct = stackalloc uint[16];
        Span<int> offset = stackalloc int[16];
        int d = 0;
        foreach (int i in bin)
        {
            uint k = keys[i];
            int pos = 0;
            while (pos < d && distinct[pos] < k) pos++;
            if (pos < d && distinct[pos] == k)
            {
                offset[pos]++;
                continue;
            }
            if (d == distinct.Length)
            {
                d = -1;
                break;
            }
            for (int q = d; q > pos; q--)
            {
                distinct[q] = distinct[q - 1];
                offset[q] = offset[q - 1];
            }
            distinct[pos] = k;
            offset[pos] = 1;
            d++;
        }
        if (d >= 0)
        {
            // Counts to starting ranks, then hand them out in index order.
            int acc = first;
            for (int q = 0; q < d; q++)
            {
                int cnt = offset[q];
                offset[q] = acc;
                acc += cnt;
            }
            for (int m = 0; m < bin.Length; m++)
            {
                uint k = keys[bin[m]];
                int pos = 0;
                while (distinct[pos] != k) pos++;
                ranks[m] = offset[pos]++;
            }
            return;
        }
        var packed = ws.Packed.AsSpan(0, bin.Length);
        for (int q = 0; q < bin.Length; q++) packed[q] = (ulong)keys[bin[q]] << 32 | (uint)q;
        packed.Sort();
        for (int r = 0; r < packed.Length; r++) ranks[(int)(uint)packed[r]] = first + r;
    }

    /// <summary>The definition: every rank computed by a stable sort, every draw compared with its threshold.</summary>
    public static int Reference(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<bool> keep)
    {
        var ranks = new int[values.Length];
        var abs = values.ToArray().Select(MathF.Abs).ToArray();
        Ranking.AscendingRanksReference(abs, ranks);
        int kept = 0;
        for (int j = 0; j < values.Length; j++) kept += (keep[j] = Draw(rng, start + j) < Threshold(p, ranks[j])) ? 1 : 0;
        return kept;
    }
}
