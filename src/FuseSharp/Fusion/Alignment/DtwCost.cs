namespace FuseSharp.Fusion.Alignment;

/// <summary>
/// Which reference's DTW token alignment to reproduce (spec §4.1). Each fixes a cost function and a traceback tie
/// order; what strings are fed in (raw pieces, or per-token decoded strings as FuseChat v2 ships) is the caller's
/// choice.
/// </summary>
public enum DtwVariant
{
    /// <summary>FuseLLM <c>others.dtw</c>: <c>lev(s − ms, t − mt)</c> (markers removed); ties diag &gt; up &gt; left.</summary>
    FuseLlm,

    /// <summary>FuseChat v1: as FuseLLM, × 0.1 when one stripped string contains the other (the empty string is in every string); ties diag &gt; up &gt; left.</summary>
    FuseChatV1,

    /// <summary>FuseChat v2: as FuseLLM, but when a stripped string is empty <c>lev(s.replace(ms, mt), t)</c>; ties diag &gt; left &gt; up.</summary>
    FuseChatV2,
}

/// <summary>Traceback preference among equal cumulative costs (<c>np.argmin</c> takes the first minimum).</summary>
public enum DtwTieOrder
{
    /// <summary>diag, then up (step back in the blending sequence), then left (step back in the base sequence): FuseLLM, FuseChat v1.</summary>
    DiagUpLeft,

    /// <summary>diag, then left, then up: FuseChat v2.</summary>
    DiagLeftUp,
}

/// <summary>Names and properties of the <see cref="DtwVariant"/>s.</summary>
public static class DtwVariants
{
    public static DtwTieOrder TieOrder(this DtwVariant variant) =>
        variant == DtwVariant.FuseChatV2 ? DtwTieOrder.DiagLeftUp : DtwTieOrder.DiagUpLeft;

    /// <summary>The CLI / JSON name: <c>fusellm</c>, <c>fusechat-v1</c>, <c>fusechat-v2</c>.</summary>
    public static string Name(this DtwVariant variant) => variant switch
    {
        DtwVariant.FuseLlm => "fusellm",
        DtwVariant.FuseChatV1 => "fusechat-v1",
        DtwVariant.FuseChatV2 => "fusechat-v2",
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };

    /// <summary>Parses a CLI / JSON name (also accepts <c>fusellm_v1</c>, <c>fusechat_v1</c>, <c>fusechat_v2</c>, case-insensitive).</summary>
    public static bool TryParse(string? name, out DtwVariant variant)
    {
        switch (name?.Trim().ToLowerInvariant().Replace('_', '-'))
        {
            case "fusellm" or "fusellm-v1":
                variant = DtwVariant.FuseLlm;
                return true;
            case "fusechat-v1":
                variant = DtwVariant.FuseChatV1;
                return true;
            case "fusechat-v2" or "fusechat-v2-decoded":
                variant = DtwVariant.FuseChatV2;
                return true;
            default:
                variant = default;
                return false;
        }
    }

    /// <summary>
    /// Python's <c>str.replace(old, new)</c> for a non-empty marker; an empty marker (a tokenizer without one) leaves
    /// the string alone. (Python would insert <c>new</c> between every character; the reference never gets there
    /// because its marker table raises first.)
    /// </summary>
    internal static string ReplaceMarker(string s, string marker, string replacement) =>
        marker.Length == 0 || marker == replacement ? s : s.Replace(marker, replacement, StringComparison.Ordinal);
}

/// <summary>
/// The cost matrix of one DTW problem: the cost of aligning blending token i with base token j under a
/// <see cref="DtwVariant"/>, memoized per pair of distinct token strings (a 2048-token text has a few hundred
/// distinct tokens, so most of the n·m cells share a handful of distances). Costs are exact float64 values as the
/// reference computes them: an integer distance, or <c>int * 0.1</c> for FuseChat v1's substring discount.
/// </summary>
internal sealed class DtwCostMatrix
{
    private readonly DtwVariant _variant;
    private readonly int[] _rowKey;   // blending position -> distinct blending string
    private readonly int[] _colKey;   // base position -> distinct base string
    private readonly int _cols;       // distinct base strings
    private readonly int[] _memo;     // distinct pair -> 2·distance + discount flag; -1 = not computed yet

    // Per distinct blending string: marker removed; marker replaced by the base marker (v2's fallback).
    private readonly int[][] _srcStripped;
    private readonly string[] _srcStrippedText;
    private readonly int[][] _srcHarmonized;

    // Per distinct base string: marker removed; raw.
    private readonly int[][] _tgtStripped;
    private readonly string[] _tgtStrippedText;
    private readonly int[][] _tgtRaw;

    public DtwCostMatrix(IReadOnlyList<string> blending, IReadOnlyList<string> @base, DtwVariant variant, string blendingMarker, string baseMarker)
    {
        _variant = variant;
        var srcDistinct = Distinct(blending, out _rowKey);
        var tgtDistinct = Distinct(@base, out _colKey);
        _cols = tgtDistinct.Count;
        long cells = (long)srcDistinct.Count * _cols;
        if (cells > Array.MaxLength)
            throw new FusionException($"DTW problem too large: {srcDistinct.Count} x {_cols} distinct tokens", "split the text into shorter documents (fusesharp fuse split)");
        _memo = new int[cells];
        Array.Fill(_memo, -1);

        _srcStrippedText = new string[srcDistinct.Count];
        _srcStripped = new int[srcDistinct.Count][];
        _srcHarmonized = new int[srcDistinct.Count][];
        for (int u = 0; u < srcDistinct.Count; u++)
        {
            _srcStrippedText[u] = DtwVariants.ReplaceMarker(srcDistinct[u], blendingMarker, "");
            _srcStripped[u] = Levenshtein.CodePoints(_srcStrippedText[u]);
            _srcHarmonized[u] = Levenshtein.CodePoints(DtwVariants.ReplaceMarker(srcDistinct[u], blendingMarker, baseMarker));
        }
        _tgtStrippedText = new string[tgtDistinct.Count];
        _tgtStripped = new int[tgtDistinct.Count][];
        _tgtRaw = new int[tgtDistinct.Count][];
        for (int u = 0; u < tgtDistinct.Count; u++)
        {
            _tgtStrippedText[u] = DtwVariants.ReplaceMarker(tgtDistinct[u], baseMarker, "");
            _tgtStripped[u] = Levenshtein.CodePoints(_tgtStrippedText[u]);
            _tgtRaw[u] = Levenshtein.CodePoints(tgtDistinct[u]);
        }
    }

    /// <summary>Number of blending positions (rows).</summary>
    public int Rows => _rowKey.Length;

    /// <summary>Number of base positions (columns).</summary>
    public int Columns => _colKey.Length;

    /// <summary>Distinct (blending, base) string pairs whose distance has been computed so far.</summary>
    public int PairsComputed { get; private set; }

    /// <summary>Offset of blending position <paramref name="i"/>'s memo row; pass it to <see cref="Cost(int, int)"/>.</summary>
    public int RowBase(int i) => _rowKey[i] * _cols;

    /// <summary>The cost of blending position i (via its <see cref="RowBase"/>) against base position <paramref name="j"/>.</summary>
    public double Cost(int rowBase, int j)
    {
        int slot = rowBase + _colKey[j];
        int packed = _memo[slot];
        if (packed < 0)
        {
            packed = Compute(rowBase / _cols, _colKey[j]);
            _memo[slot] = packed;
            PairsComputed++;
        }
        // int * 0.1 as Python computes `dist * w` with w = 0.1 (a float64 product, not dist / 10).
        return (packed & 1) != 0 ? (packed >> 1) * 0.1 : packed >> 1;
    }

    private int Compute(int s, int t)
    {
        switch (_variant)
        {
            case DtwVariant.FuseLlm:
                return Levenshtein.Distance(_srcStripped[s], _tgtStripped[t]) << 1;
            case DtwVariant.FuseChatV1:
            {
                int d = Levenshtein.Distance(_srcStripped[s], _tgtStripped[t]);
                string a = _srcStrippedText[s], b = _tgtStrippedText[t];
                bool discount = a.Contains(b, StringComparison.Ordinal) || b.Contains(a, StringComparison.Ordinal);
                return (d << 1) | (discount ? 1 : 0);
            }
            case DtwVariant.FuseChatV2:
                return _srcStripped[s].Length == 0 || _tgtStripped[t].Length == 0
                    ? Levenshtein.Distance(_srcHarmonized[s], _tgtRaw[t]) << 1
                    : Levenshtein.Distance(_srcStripped[s], _tgtStripped[t]) << 1;
            default:
                throw new ArgumentOutOfRangeException(nameof(_variant));
        }
    }

    private static List<string> Distinct(IReadOnlyList<string> tokens, out int[] keys)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var distinct = new List<string>();
        keys = new int[tokens.Count];
        for (int i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i] ?? throw new ArgumentException($"token {i} is null", nameof(tokens));
            if (!index.TryGetValue(t, out int k))
            {
                k = distinct.Count;
                index[t] = k;
                distinct.Add(t);
            }
            keys[i] = k;
        }
        return distinct;
    }
}
