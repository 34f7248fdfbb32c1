namespace FuseSharp.Fusion.Fuse;

/// <summary>
/// Per-position sparse lists of (token id, value) in CSR form: position t owns entries [Offsets[t], Offsets[t+1]).
/// Used for a model's own top-k (k entries per position, values = raw logits), for aligned source lists (1..k
/// entries, raw logits or a one-hot 1.0, possibly empty) and for fused target distributions (probabilities).
/// </summary>
public sealed class SparseRows
{
    public SparseRows(int[] offsets, int[] ids, float[] values)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(values);
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != ids.Length || ids.Length != values.Length)
            throw new ArgumentException($"inconsistent sparse rows: {offsets.Length} offsets ending at {(offsets.Length == 0 ? -1 : offsets[^1])}, {ids.Length} ids, {values.Length} values");
        Offsets = offsets;
        Ids = ids;
        Values = values;
    }

    /// <summary>Fixed-width rows (k entries per position), e.g. a model's top-k.</summary>
    public static SparseRows Dense(int[] ids, float[] values, int k)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (k <= 0 || ids.Length % k != 0) throw new ArgumentException($"{ids.Length} ids are not a multiple of k = {k}", nameof(ids));
        var offsets = new int[ids.Length / k + 1];
        for (int t = 1; t < offsets.Length; t++) offsets[t] = t * k;
        return new SparseRows(offsets, ids, values);
    }

    /// <summary>Rows with no positions.</summary>
    public static SparseRows Empty { get; } = new([0], [], []);

    /// <summary>Length Positions + 1.</summary>
    public int[] Offsets { get; }

    public int[] Ids { get; }

    public float[] Values { get; }

    public int Positions => Offsets.Length - 1;

    public int Count(int t) => Offsets[t + 1] - Offsets[t];

    public ReadOnlySpan<int> IdsAt(int t) => Ids.AsSpan(Offsets[t], Offsets[t + 1] - Offsets[t]);

    public ReadOnlySpan<float> ValuesAt(int t) => Values.AsSpan(Offsets[t], Offsets[t + 1] - Offsets[t]);

    /// <summary>Positions [start, start + count) as new rows.</summary>
    public SparseRows Slice(int start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(start + count, Positions);
        int a = Offsets[start], b = Offsets[start + count];
        var offsets = new int[count + 1];
        for (int t = 0; t <= count; t++) offsets[t] = Offsets[start + t] - a;
        return new SparseRows(offsets, Ids[a..b], Values[a..b]);
    }

    /// <summary>Concatenates rows position-wise.</summary>
    public static SparseRows Concat(IReadOnlyList<SparseRows> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        int positions = parts.Sum(p => p.Positions), entries = parts.Sum(p => p.Ids.Length);
        var offsets = new int[positions + 1];
        var ids = new int[entries];
        var values = new float[entries];
        int t0 = 0, e0 = 0;
        foreach (var p in parts)
        {
            for (int t = 1; t <= p.Positions; t++) offsets[t0 + t] = e0 + p.Offsets[t];
            p.Ids.CopyTo(ids, e0);
            p.Values.CopyTo(values, e0);
            t0 += p.Positions;
            e0 += p.Ids.Length;
        }
        return new SparseRows(offsets, ids, values);
    }
}
