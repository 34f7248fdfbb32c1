using System.Numerics;
using System.Runtime.CompilerServices;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Ascending ranks within a vector, ties broken by index (a stable sort's order), as DELLA's rank-based keep
/// probabilities and WIDEN's within-model ranks need them. The fast path maps values to order-preserving unsigned keys
/// and bucket-sorts (key, index) pairs by the key's offset from the minimum, recursing into crowded buckets (O(n) for
/// spread data; runs of equal values, common in BF16 checkpoints, cost nothing extra); <see cref="AscendingRanksReference"/>
/// is the plain comparison-sort version the tests check it against.
/// </summary>
public static class Ranking
{
    /// <summary>Per-thread work arrays for <see cref="AscendingRanks"/>.</summary>
    public sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? _current;

        internal ulong[] Packed = [], Scratch = [];
        internal readonly int[][] Counts = Enumerable.Range(0, MaxDepth).Select(_ => new int[(1 << 12) + 2]).ToArray();

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (Packed.Length >= n) return;
            Packed = new ulong[n];
            Scratch = new ulong[n];
        }
    }

    /// <summary>
    /// Effectively computes <c>ranks[i] = #{ j : values[j] &lt; values[i] or (values[j] == values[i] and j &lt; i) }</c>
    /// (-0 equals +0; a positive NaN ranks last).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // Called per row (DELLA) or per model (WIDEN), a few times per tensor: optimised at once, not as tier-0 / OSR code.
    public static void AscendingRanks(ReadOnlySpan<float> values, Span<int> ranks, Workspace ws)
    {
        int n = values.Length;
        if (ranks.Length != n) throw new ArgumentException("ranks and values differ in length", nameof(ranks));
        if (n == 0) return;
        ws.Ensure(n);
        var packed = ws.Packed.AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            // Map IEEE bits to unsigned keys in numeric order: negatives flipped, positives offset; -0 is +0.
            uint k = BitConverter.SingleToUInt32Bits(values[i]);
            if (k == 0x8000_0000u) k = 0;
            uint key = (k & 0x8000_0000u) != 0 ? ~k : k | 0x8000_0000u;
            packed[i] = (ulong)key << 32 | (uint)i;
        }
        SortPacked(packed, ws.Scratch.AsSpan(0, n), ws, 0);
        for (int p = 0; p < n; p++) ranks[(int)(uint)packed[p]] = p;
    }

    /// <summary>
    /// Sorts (key &lt;&lt; 32 | index) values that arrive in index order for equal keys: a stable counting scatter
    /// spreads them over about 2n buckets by the key's offset from the minimum, then each bucket is handled the same
    /// way (equal keys need nothing: the scatter kept their index order). Small ranges use insertion sort; after a
    /// few levels a plain sort finishes (the packed values are unique, so any sort gives the stable order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SortPacked(Span<ulong> a, Span<ulong> tmp, Workspace ws, int depth)
    {
        int n = a.Length;
        if (n <= 24)
        {
            InsertionSort(a);
            return;
        }
        uint min = uint.MaxValue, max = 0;
        foreach (var v in a)
        {
            uint k = (uint)(v >> 32);
            if (k < min) min = k;
            if (k > max) max = k;
        }
        if (min == max) return;
        if (depth >= MaxDepth)
        {
            a.Sort();
            return;
        }
        int bucketBits = Math.Clamp(BitOperations.Log2((uint)n) + 1, 4, 12);
        int rangeBits = 32 - BitOperations.LeadingZeroCount(max - min);
        int shift = Math.Max(0, rangeBits - bucketBits);
        int buckets = (int)((max - min) >> shift) + 1;
        var counts = ws.Counts[depth].AsSpan(0, buckets + 1);
        counts.Clear();
        foreach (var v in a) counts[(int)(((uint)(v >> 32) - min) >> shift) + 1]++;
        for (int b = 1; b <= buckets; b++) counts[b] += counts[b - 1];
        foreach (var v in a) tmp[counts[(int)(((uint)(v >> 32) - min) >> shift)]++] = v;
        tmp.CopyTo(a);
        // counts[b] is now the end of bucket b.
        int begin = 0;
        for (int b = 0; b < buckets; b++)
        {
            int end = counts[b];
            if (end - begin > 1) SortPacked(a[begin..end], tmp[begin..end], ws, depth + 1);
            begin = end;
        }
    }

    private const int MaxDepth = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
