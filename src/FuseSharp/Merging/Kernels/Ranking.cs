namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Ascending ranks within a vector, ties broken by index (a stable sort's order), as DELLA's rank-based keep
/// probabilities and WIDEN's within-model ranks need them. The fast path is an LSD radix sort on the IEEE bits of
/// values mapped to order-preserving unsigned keys (three 11-bit digits, O(n)); <see cref="AscendingRanksReference"/> is the plain
/// comparison-sort version the tests check it against.
/// </summary>
public static class Ranking
{
    private const int Bits = 11;
    private const int Buckets = 1 << Bits;

    /// <summary>Per-thread work arrays for <see cref="AscendingRanks"/>.</summary>
    public sealed class Workspace
    {
        [ThreadStatic]
        private static Workspace? _current;

        internal uint[] KeysA = [], KeysB = [];
        internal int[] IdxA = [], IdxB = [];
        internal readonly int[] Counts = new int[Buckets];

        public static Workspace ForCurrentThread() => _current ??= new Workspace();

        internal void Ensure(int n)
        {
            if (KeysA.Length >= n) return;
            KeysA = new uint[n];
            KeysB = new uint[n];
            IdxA = new int[n];
            IdxB = new int[n];
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
        var idx = ws.IdxA.AsSpan(0, n);
        var keys2 = ws.KeysB.AsSpan(0, n);
        var idx2 = ws.IdxB.AsSpan(0, n);
        for (int i = 0; i < n; i++)
        {
            // Map IEEE bits to unsigned keys in numeric order: negatives flipped, positives offset; -0 is +0.
            uint k = BitConverter.SingleToUInt32Bits(values[i]);
            if (k == 0x8000_0000u) k = 0;
            keys[i] = (k & 0x8000_0000u) != 0 ? ~k : k | 0x8000_0000u;
            idx[i] = i;
        }
        var counts = ws.Counts;
        for (int shift = 0; shift < 32; shift += Bits)
        {
            Array.Clear(counts);
            for (int i = 0; i < n; i++) counts[(keys[i] >> shift) & (Buckets - 1)]++;
            // A digit that is the same for every key does not reorder anything: skip its scatter.
            if (counts[(keys[0] >> shift) & (Buckets - 1)] == n) continue;
            int sum = 0;
            for (int b = 0; b < Buckets; b++)
            {
                int c = counts[b];
                counts[b] = sum;
                sum += c;
            }
            for (int i = 0; i < n; i++)
            {
                int pos = counts[(keys[i] >> shift) & (Buckets - 1)]++;
                keys2[pos] = keys[i];
                idx2[pos] = idx[i];
            }
            var tk = keys; keys = keys2; keys2 = tk;
            var ti = idx; idx = idx2; idx2 = ti;
        }
        for (int p = 0; p < n; p++) ranks[idx[p]] = p;
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
