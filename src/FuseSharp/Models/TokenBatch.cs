namespace FuseSharp.Models;

/// <summary>
/// A batch of token sequences for one forward: ids <c>(B, T)</c>, an attention mask (1 = real token, 0 = padding;
/// null when every token is real) and optional explicit positions. By default the positions of a row count its
/// real tokens (a padded slot takes the next position but is never attended to), continuing from the KV cache;
/// that makes right padding, left padding and gaps all equal to running each row alone.
/// </summary>
public sealed class TokenBatch
{
    /// <param name="batchSize">B.</param>
    /// <param name="length">T.</param>
    /// <param name="ids">Token ids, row-major <c>(B, T)</c>.</param>
    /// <param name="mask">Optional <c>(B, T)</c> attention mask.</param>
    /// <param name="positions">Optional <c>(B, T)</c> position ids.</param>
    public TokenBatch(int batchSize, int length, int[] ids, byte[]? mask = null, int[]? positions = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (batchSize <= 0 || length <= 0) throw new ArgumentException($"a batch needs at least one row and one position (got {batchSize} x {length})");
        long n = (long)batchSize * length;
        if (ids.Length != n) throw new ArgumentException($"{ids.Length} ids do not fill a {batchSize} x {length} batch", nameof(ids));
        if (mask is not null && mask.Length != n) throw new ArgumentException($"mask has {mask.Length} entries for a {batchSize} x {length} batch", nameof(mask));
        if (positions is not null && positions.Length != n) throw new ArgumentException($"positions has {positions.Length} entries for a {batchSize} x {length} batch", nameof(positions));
        BatchSize = batchSize;
        Length = length;
        Ids = ids;
        Mask = mask is not null && mask.All(m => m != 0) ? null : mask;
        Positions = positions;
    }

    public int BatchSize { get; }

    public int Length { get; }

    /// <summary>Row-major <c>(B, T)</c> ids.</summary>
    public int[] Ids { get; }

    /// <summary>Row-major <c>(B, T)</c> attention mask, or null when every token is real.</summary>
    public byte[]? Mask { get; }

    /// <summary>Explicit positions, or null for the default (count of real tokens before, plus the cache's).</summary>
    public int[]? Positions { get; }

    public int this[int b, int t] => Ids[b * Length + t];

    /// <summary>True when (b, t) is a real token.</summary>
    public bool IsReal(int b, int t) => Mask is null || Mask[b * Length + t] != 0;

    /// <summary>Number of real tokens in row <paramref name="b"/>.</summary>
    public int RealCount(int b)
    {
        if (Mask is null) return Length;
        int n = 0;
        for (int t = 0; t < Length; t++) n += Mask[b * Length + t] != 0 ? 1 : 0;
        return n;
    }

    /// <summary>The last real position of row <paramref name="b"/>, or −1 when the row is all padding.</summary>
    public int LastReal(int b)
    {
        for (int t = Length - 1; t >= 0; t--) if (IsReal(b, t)) return t;
        return -1;
    }

    /// <summary>One sequence.</summary>
    public static TokenBatch Single(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return new TokenBatch(1, ids.Count, ids.ToArray());
    }

    /// <summary>Sequences of different lengths, right-padded with <paramref name="padId"/> and masked.</summary>
    public static TokenBatch RightPadded(IReadOnlyList<IReadOnlyList<int>> sequences, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("no sequences", nameof(sequences));
        int t = sequences.Max(s => s.Count);
        var mask = new byte[sequences.Count * t];
        for (int b = 0; b < sequences.Count; b++) mask.AsSpan(b * t, sequences[b].Count).Fill(1);
        return new TokenBatch(sequences.Count, t, PadRows(sequences, t, padId), mask);
    }

    /// <summary>Rows laid out row-major with stride <paramref name="length"/>, the rest filled with <paramref name="fill"/> (ids, labels, targets).</summary>
    public static int[] PadRows(IReadOnlyList<IReadOnlyList<int>> rows, int length, int fill)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var flat = new int[rows.Count * length];
        Array.Fill(flat, fill);
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b].Count > length) throw new ArgumentException($"row {b} has {rows[b].Count} entries, more than {length}", nameof(rows));
            for (int i = 0; i < rows[b].Count; i++) flat[b * length + i] = rows[b][i];
        }
        return flat;
    }
}
