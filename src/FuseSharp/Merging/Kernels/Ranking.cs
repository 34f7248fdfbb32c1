using System.Numerics;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Ascending ranks within a vector, ties broken by index (a stable sort's order), as DELLA's rank-based keep
/// probabilities and WIDEN's within-model ranks need them. The fast path maps values to order-preserving unsigned keys,
/// spreads them over about n buckets by their offset from the minimum (one counting pass and one scatter, O(n)) and
/// sorts the few (key, index) pairs in each bucket; <see cref="AscendingRanksReference"/> is the plain
/// comparison-sort version the tests check it against.
/// </summary>
public static class Ranking
{
    /// <summary>Per-thread work arrays for <see cref="AscendingRanks"/>.</summary>
    public sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? _current;

        internal uint[] KeysA = [];
        internal ulong[] Packed = [];
        internal readonly int[] Counts = new int[(1 << 12) + 2];

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (KeysA.Length >= n) return;
            KeysA = new uint[n];
            Packed = new ulong[n];
        }
    }

    /// <summary>
    /// Effectively computes <c>ranks[i] = #{ j : values[j] &lt; values[i] or (values[j] == values[i] and j &lt; i) }</c>
    /// (-0 equals +0; a positive NaN ranks last).
    /// </summary>
    public static void AscendingRanks(ReadOnlySpan<float> values, Span<int> ranks, Workspace ws)
    {
        int n = values.Length;
        if (ranks.Length != n) throw new ArgumentException("ranks and values differ in length", nameof(ranks));
        if (n == 0) return;
        ws.Ensure(n);
        var keys = ws.KeysA.AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            // Map IEEE bits to unsigned keys in numeric order: negatives flipped, positives offset; -0 is +0.
            uint k = BitConverter.SingleToUInt32Bits(values[i]);
            if (k == 0x8000_0000u) k = 0;
            keys[i] = (k & 0x8000_0000u) != 0 ? ~k : k | 0x8000_0000u;
        }
        // One-level bucket sort: keys (which grow with the value) are spread over about n buckets by their offset
        // from the minimum, then each bucket's few (key, index) pairs are sorted; packing the index into the low
        // 32 bits makes the order total, so ties come out by index.
        uint min = uint.MaxValue, max = 0;
        foreach (var k in keys)
        {
            if (k < min) min = k;
            if (k > max) max = k;
        }
        var packed = ws.Packed.AsSpan(0, n);
        if (min == max)
        {
            for (int i = 0; i < n; i++) ranks[i] = i;
            return;
        }
        int bucketBits = Math.Clamp(BitOperations.Log2((uint)n) + 1, 4, 12);
        int rangeBits = 32 - BitOperations.LeadingZeroCount(max - min);
        int shift = Math.Max(0, rangeBits - bucketBits);
        int buckets = (int)((max - min) >> shift) + 1;
        var counts = ws.Counts.AsSpan(0, buckets + 1);
        counts.Clear();
        foreach (var k in keys) counts[(int)((k - min) >> shift) + 1]++;
        for (int b = 1; b <= buckets; b++) counts[b] += counts[b - 1];
        for (int i = 0; i < n; i++)
        {
            uint k = keys[i];
            packed[counts[(int)((k - min) >> shift)]++] = (ulong)k << 32 | (uint)i;
        }
        // counts[b] is now the end of bucket b (= start of b + 1).
        int begin = 0;
        for (int b = 0; b < buckets; b++)
        {
            int end = counts[b];
            int size = end - begin;
            if (size > 1)
            {
                var part = packed.Slice(begin, size);
                if (size <= 24) InsertionSort(part);
                else part.Sort();
            }
            begin = end;
        }
        for (int p = 0; p < n; p++) ranks[(int)(uint)packed[p]] = p;
    }

    private static void InsertionSort(Span<ulong> a)
    {
        for (int i = 1; i < a.Length; i++)
        {
            ulong x = a[i];
            int j = i - 1;
            for (; j >= 0 && a[j] > x; j--) a[j + 1] = a[j];
            a[j + 1] = x;
        }
    }

    /// <summary>The scalar reference: a stable comparison sort by (value, index).</summary>
    public static void AscendingRanksReference(ReadOnlySpan<float> values, Span<int> ranks)
    {
        var order = Enumerable.Range(0, values.Length).ToArray();
        var v = values.ToArray();
        Array.Sort(order, (a, b) =>
        {
            int c = v[a].CompareTo(v[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        for (int p = 0; p < order.Length; p++) ranks[order[p]] = p;
    }
}
