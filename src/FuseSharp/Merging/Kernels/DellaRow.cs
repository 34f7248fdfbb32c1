using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// DELLA's keep decisions for one row without sorting it: element j is kept when its uniform 32-bit draw is below
/// <c>threshold(rank_j)</c>, where rank_j is its stable ascending rank of |Δ| in the row and the threshold rises
/// linearly with the rank. The threshold is monotone, so knowing that rank_j lies in [lo, hi] decides every draw
/// outside [threshold(lo), threshold(hi)); a 256-bin histogram of the (order-preserving) keys gives each element
/// such an interval in one pass, and only the few undecided elements get their exact rank, counted within their bin.
/// The decisions are exactly those of computing every rank (<see cref="Reference"/>), at a fraction of the cost.
/// </summary>
public static class DellaRow
{
    private const int Bins = 256;

    /// <summary>Per-thread work arrays.</summary>
    public sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? _current;

        internal uint[] Keys = [];
        internal int[] Members = [];
        internal readonly int[] Count = new int[Bins + 1], Start = new int[Bins + 1];
        internal readonly uint[] ThresholdLow = new uint[Bins], ThresholdHigh = new uint[Bins];
        internal readonly List<int> Undecided = [];
        internal readonly bool[] Sorted = new bool[Bins];
        internal ulong[] Packed = [];

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (Keys.Length >= n) return;
            Keys = new uint[n];
            Members = new int[n];
            Packed = new ulong[n];
        }
    }

    /// <summary>The 32-bit keep threshold for rank r: <c>tBase + tStep · r</c>, saturated to the uint range.</summary>
    public static uint Threshold(double tBase, double tStep, int rank)
    {
        double t = tBase + tStep * rank;
        return t >= 4294967295.0 ? uint.MaxValue : t <= 0 ? 0u : (uint)t;
    }

    /// <summary>
    /// The uniform draw of element <paramref name="e"/>: half (e &amp; 1) of the 64-bit value at counter e / 2 of
    /// <paramref name="rng"/> (the same stream layout as DARE's masks).
    /// </summary>
    public static uint Draw(CounterRandom rng, long e)
    {
        ulong r = rng.NextUInt64(e >> 1);
        return (e & 1) == 0 ? (uint)r : (uint)(r >> 32);
    }

    /// <summary>
    /// Effectively computes <c>keep[j] = Draw(start + j) &lt; Threshold(rank_j)</c> for non-negative
    /// <paramref name="values"/> (rank: stable ascending, ties by index). Returns the number kept.
    /// </summary>
    public static int Decide(ReadOnlySpan<float> values, long start, CounterRandom rng, double tBase, double tStep, Span<bool> keep, Workspace ws)
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
            for (int j = 0; j < n; j++) kept += (keep[j] = Draw(rng, start + j) < Threshold(tBase, tStep, j)) ? 1 : 0;
            return kept;
        }
        int rangeBits = 32 - System.Numerics.BitOperations.LeadingZeroCount(max - min);
        int shift = Math.Max(0, rangeBits - 8);
        var count = ws.Count.AsSpan();
        var first = ws.Start.AsSpan();
        count.Clear();
        foreach (var k in keys) count[(int)((k - min) >> shift)]++;
        int acc = 0;
        for (int b = 0; b < Bins; b++)
        {
            first[b] = acc;
            if (count[b] > 0)
            {
                ws.ThresholdLow[b] = Threshold(tBase, tStep, acc);
                ws.ThresholdHigh[b] = Threshold(tBase, tStep, acc + count[b] - 1);
            }
            acc += count[b];
        }
        var undecided = ws.Undecided;
        undecided.Clear();
        ulong pair = 0;
        for (int j = 0; j < n; j++)
        {
            long e = start + j;
            if (j == 0 || (e & 1) == 0) pair = rng.NextUInt64(e >> 1);
            uint u = (e & 1) == 0 ? (uint)pair : (uint)(pair >> 32);
            int b = (int)((keys[j] - min) >> shift);
            if (u < ws.ThresholdLow[b]) keep[j] = true;
            else if (u >= ws.ThresholdHigh[b]) keep[j] = false;
            else
            {
                keep[j] = false;
                undecided.Add(j);
            }
        }
        if (undecided.Count > 0) ResolveUndecided(keys, min, shift, start, rng, tBase, tStep, keep, ws);
        foreach (var k in keep[..n]) if (k) kept++;
        return kept;
    }

    /// <summary>Exact ranks for the undecided elements: members of their bins (in index order), counted or sorted.</summary>
    private static void ResolveUndecided(Span<uint> keys, uint min, int shift, long start, CounterRandom rng, double tBase, double tStep, Span<bool> keep, Workspace ws)
    {
        int n = keys.Length;
        // Bin members in index order (a stable counting scatter).
        var next = ws.Count.AsSpan(); // reused as fill pointers
        for (int b = 0; b < Bins; b++) next[b] = ws.Start[b];
        var members = ws.Members.AsSpan(0, n);
        for (int j = 0; j < n; j++) members[next[(int)((keys[j] - min) >> shift)]++] = j;
        Array.Clear(ws.Sorted);
        foreach (int j in ws.Undecided)
        {
            int b = (int)((keys[j] - min) >> shift);
            int s = ws.Start[b], c = (b + 1 < Bins ? ws.Start[b + 1] : n) - s;
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
                // Large bin: sort its (key, index) pairs once, then look the element up.
                var packed = ws.Packed.AsSpan(s, c);
                if (!ws.Sorted[b])
                {
                    for (int q = 0; q < c; q++) packed[q] = (ulong)keys[bin[q]] << 32 | (uint)bin[q];
                    packed.Sort();
                    ws.Sorted[b] = true;
                }
                rank = s + packed.BinarySearch((ulong)keys[j] << 32 | (uint)j);
            }
            keep[j] = Draw(rng, start + j) < Threshold(tBase, tStep, rank);
        }
    }

    /// <summary>The definition: every rank computed by a stable sort, every draw compared with its threshold.</summary>
    public static int Reference(ReadOnlySpan<float> values, long start, CounterRandom rng, double tBase, double tStep, Span<bool> keep)
    {
        var ranks = new int[values.Length];
        var abs = values.ToArray().Select(MathF.Abs).ToArray();
        Ranking.AscendingRanksReference(abs, ranks);
        int kept = 0;
        for (int j = 0; j < values.Length; j++) kept += (keep[j] = Draw(rng, start + j) < Threshold(tBase, tStep, ranks[j])) ? 1 : 0;
        return kept;
    }
}
