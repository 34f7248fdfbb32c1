
namespace FuseSharp.Merging.Kernels;

/// <summary>
/// DELLA's keep decisions for one row without sorting it: element j is kept when its uniform 32-bit draw is below
/// <c>threshold(rank_j)</c>, where rank_j is its stable ascending rank of |Δ| in the row and the threshold rises
/// linearly with the rank. The threshold is monotone, so knowing that rank_j lies in [lo, hi] decides every draw
/// outside [threshold(lo), threshold(hi)); a histogram of the (order-preserving) keys with about one bin per element
/// gives each element such an interval in one pass, and only the few undecided elements get their exact rank within
/// their bin (counted, found among equal keys by position, or from the bin sorted once).
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
        internal int[] Members = [];
        internal readonly int[] Count = new int[MaxBins + 1], Start = new int[MaxBins + 1];
        internal readonly List<int> Undecided = [];
        internal readonly byte[] BinState = new byte[MaxBins]; // 0 unknown, 1 one key (ties only), 2 sorted
        internal ulong[] Packed = [];
        internal int Bins;

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (Keys.Length >= n) return;
            Keys = new uint[n];
            Draws = new uint[n];
            Members = new int[n];
            Packed = new ulong[n];
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
    /// Effectively computes <c>keep[j] = Draw(start + j) &lt; Threshold(rank_j)</c> for non-negative
    /// <paramref name="values"/> (rank: stable ascending, ties by index). Returns the number kept.
    /// </summary>
    public static int Decide(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<bool> keep, Workspace ws)
    {
        int n = values.Length;
        ws.Ensure(n);
        var keys = ws.Keys.AsSpan(0, n);
        uint min = uint.MaxValue, max = 0;
        for (int j = 0; j < n; j++)
        {
            // Non-negative floats order like their bit patterns (-0 is +0).
            uint k = BitConverter.SingleToUInt32Bits(values[j]) & 0x7FFF_FFFFu;
            keys[j] = k;
            if (k < min) min = k;
            if (k > max) max = k;
        }
        int kept = 0;
        if (min == max)
        {
            // All equal: ranks are the indices.
            for (int j = 0; j < n; j++) kept += (keep[j] = Draw(rng, start + j) < Threshold(p, j)) ? 1 : 0;
            return kept;
        }
        // About one bin per element (fewer for short rows), so bins are small and few draws are undecided.
        int binBits = Math.Clamp(System.Numerics.BitOperations.Log2((uint)n), 8, 13);
        int rangeBits = 32 - System.Numerics.BitOperations.LeadingZeroCount(max - min);
        int shift = Math.Max(0, rangeBits - binBits);
        int bins = (int)((max - min) >> shift) + 1;
        ws.Bins = bins;
        var count = ws.Count.AsSpan(0, bins + 1);
        var first = ws.Start.AsSpan(0, bins + 1);
        count.Clear();
        foreach (var k in keys) count[(int)((k - min) >> shift)]++;
        int acc = 0;
        for (int b = 0; b < bins; b++)
        {
            first[b] = acc;
            acc += count[b];
        }
        first[bins] = n;
        var undecided = ws.Undecided;
        undecided.Clear();
        var draws = ws.Draws.AsSpan(0, n);
        rng.Fill(start, draws);
        for (int j = 0; j < n; j++)
        {
            uint u = draws[j];
            int b = (int)((keys[j] - min) >> shift);
            // rank_j lies in [first[b], first[b + 1] - 1] and the threshold is monotone in the rank: below the
            // lowest threshold keeps, at or above the highest drops, in between (rare) needs the exact rank.
            // Branch-free on the random outcome; only the rare undecided case branches.
            bool k = u < Threshold(p, first[b]);
            keep[j] = k;
            if (!k & (u < Threshold(p, first[b + 1] - 1))) undecided.Add(j);
        }
        if (undecided.Count > 0) ResolveUndecided(keys, min, shift, start, rng, p, keep, ws);
        foreach (var k in keep[..n]) if (k) kept++;
        return kept;
    }

    /// <summary>Exact ranks for the undecided elements: members of their bins (in index order), counted or sorted.</summary>
    private static void ResolveUndecided(Span<uint> keys, uint min, int shift, long start, UniformStream rng, Probability p, Span<bool> keep, Workspace ws)
    {
        int n = keys.Length;
        // Bin members in index order (a stable counting scatter).
        int bins = ws.Bins;
        var next = ws.Count.AsSpan(0, bins); // reused as fill pointers
        for (int b = 0; b < bins; b++) next[b] = ws.Start[b];
        var members = ws.Members.AsSpan(0, n);
        for (int j = 0; j < n; j++) members[next[(int)((keys[j] - min) >> shift)]++] = j;
        Array.Clear(ws.BinState, 0, bins);
        foreach (int j in ws.Undecided)
        {
            int b = (int)((keys[j] - min) >> shift);
            int s = ws.Start[b], c = ws.Start[b + 1] - s;
            var bin = members.Slice(s, c);
            if (ws.BinState[b] == 0 && c > 32)
            {
                bool one = true;
                foreach (int i in bin) one &= keys[i] == keys[bin[0]];
                if (one) ws.BinState[b] = 1;
            }
            int rank;
            if (ws.BinState[b] == 1)
            {
                // One key: members are in index order, so the rank is the position among them.
                rank = s + bin.BinarySearch(j);
            }
            else if (c <= 32)
            {
                int less = 0;
                uint kj = keys[j];
                foreach (int i in bin) if (keys[i] < kj || (keys[i] == kj && i < j)) less++;
                rank = s + less;
            }
            else
            {
                // Large bin: sort its (key, index) pairs once, then look the element up.
                var packed = ws.Packed.AsSpan(s, c);
                if (ws.BinState[b] != 2)
                {
                    for (int q = 0; q < c; q++) packed[q] = (ulong)keys[bin[q]] << 32 | (uint)bin[q];
                    packed.Sort();
                    ws.BinState[b] = 2;
                }
                rank = s + packed.BinarySearch((ulong)keys[j] << 32 | (uint)j);
            }
            keep[j] = Draw(rng, start + j) < Threshold(p, rank);
        }
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
