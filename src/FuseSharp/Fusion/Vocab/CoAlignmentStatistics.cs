using FuseSharp.Fusion.Alignment;

namespace FuseSharp.Fusion.Vocab;

/// <summary>How the MS map picks a base token among those co-aligned with a blending token.</summary>
public enum MsScorer
{
    /// <summary>
    /// The shipped FuseChat v2 scorer (default; reproduces the reference): <c>argmin d(s, b) · sigmoid(M[b, s])</c>,
    /// lowest base id on ties. The sigmoid grows with the count, so among equal distances the <i>less</i> frequent
    /// pair wins (spec §3.2 flags this as probably unintended).
    /// </summary>
    Faithful,

    /// <summary>The evident intent (“use alignment statistics”): the most frequent co-aligned base token; ties by smaller distance, then lowest id.</summary>
    Frequency,
}

/// <summary>
/// The sparse count matrix M[b, s] of FuseChat v2's token-alignment pass (spec §3.2 MS): for every document, DTW
/// aligns the two tokenizations; for each base position with token b, every <i>distinct</i> blending id s aligned to
/// it adds 1 (numpy fancy-index <c>+=</c> semantics: a repeated id counts once per position). Documents can be added
/// from several threads into separate instances and merged.
/// </summary>
public sealed class CoAlignmentCounts
{
    private readonly Dictionary<long, int> _counts = [];

    /// <summary>Number of distinct (base, blending) pairs with a non-zero count.</summary>
    public int NonZero => _counts.Count;

    /// <summary>Documents added (including merged ones).</summary>
    public long Documents { get; private set; }

    /// <summary>M[baseId, blendingId].</summary>
    public int this[int baseId, int blendingId] => _counts.TryGetValue(Key(baseId, blendingId), out int c) ? c : 0;

    /// <summary>Adds one document's alignment.</summary>
    public void Add(IReadOnlyList<int> baseIds, IReadOnlyList<int> blendingIds, DtwAlignment alignment)
    {
        ArgumentNullException.ThrowIfNull(baseIds);
        ArgumentNullException.ThrowIfNull(blendingIds);
        ArgumentNullException.ThrowIfNull(alignment);
        if (alignment.BaseLength != baseIds.Count || alignment.BlendingLength != blendingIds.Count)
            throw new ArgumentException("the alignment does not match the id sequences");
        for (int j = 0; j < baseIds.Count; j++)
        {
            int first = alignment.BaseFirst[j], last = alignment.BaseLast[j];
            for (int i = first; i <= last; i++)
            {
                int s = blendingIds[i];
                bool repeated = false;
                for (int q = first; q < i && !repeated; q++) repeated = blendingIds[q] == s; // ranges are a few tokens long
                if (repeated) continue;
                var key = Key(baseIds[j], s);
                _counts[key] = _counts.TryGetValue(key, out int c) ? c + 1 : 1;
            }
        }
        Documents++;
    }

    /// <summary>Adds another instance's counts (for per-thread accumulation).</summary>
    public void Merge(CoAlignmentCounts other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (var (k, v) in other._counts) _counts[k] = _counts.TryGetValue(k, out int c) ? c + v : v;
        Documents += other.Documents;
    }

    /// <summary>All non-zero entries as (base id, blending id, count), ordered by base id then blending id.</summary>
    public IEnumerable<(int BaseId, int BlendingId, int Count)> Entries() =>
        _counts.OrderBy(p => p.Key).Select(p => ((int)(p.Key >> 32), (int)(p.Key & 0xFFFF_FFFF), p.Value));

    /// <summary>Per blending id: its co-aligned (base id, count) pairs, ascending base id.</summary>
    internal Dictionary<int, List<(int BaseId, int Count)>> ByBlending()
    {
        var r = new Dictionary<int, List<(int, int)>>();
        foreach (var (b, s, c) in Entries())
        {
            if (!r.TryGetValue(s, out var list)) r[s] = list = [];
            list.Add((b, c));
        }
        return r;
    }

    private static long Key(int baseId, int blendingId) => ((long)baseId << 32) | (uint)blendingId;
}

/// <summary>Builds the MS vocabulary map from <see cref="CoAlignmentCounts"/> (FuseChat v2 <c>token_align_mapping(..., "default", Mᵀ)</c>).</summary>
public static class MsVocabMapper
{
    /// <summary>
    /// For each blending id with co-aligned base ids, the best base id under <paramref name="scorer"/>; blending BOS →
    /// base BOS and EOS → EOS are forced (when both exist); never-aligned ids are unmapped (their list form holds the
    /// base unk id, else eos, as the reference's <c>map_token_id</c>). Only token pairs actually co-aligned in the
    /// corpus can be chosen.
    /// </summary>
    public static VocabMap Build(CoAlignmentCounts counts, TokenVocabulary blending, TokenVocabulary @base, MsScorer scorer = MsScorer.Faithful)
    {
        ArgumentNullException.ThrowIfNull(counts);
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        var target = new int[blending.Count];
        Array.Fill(target, -1);
        int chosen = 0, exact = 0;
        foreach (var (s, candidates) in counts.ByBlending())
        {
            if (s < 0 || s >= blending.Count)
                throw new FusionException($"co-alignment counts name blending id {s}, outside the blending vocabulary {blending.Name} ({blending.Count} entries)", "the counts were made with another tokenizer");
            if (blending.Piece(s) is not { } sp) continue; // the reference skips ids without a piece
            int best = -1;
            double bestScore = double.PositiveInfinity, bestDist = double.PositiveInfinity;
            int bestCount = -1;
            foreach (var (b, c) in candidates)
            {
                double dist = PieceDistance(sp, blending.Marker, @base.RequirePiece(b), @base.Marker);
                if (scorer == MsScorer.Faithful)
                {
                    // weighted = dist * sigmoid(count), sigmoid = 1 / (1 + exp(-x)) in float64; np.argmin keeps the first.
                    double score = dist * (1.0 / (1 + Math.Exp(-(double)c)));
                    if (score < bestScore) { bestScore = score; best = b; }
                }
                else if (c > bestCount || (c == bestCount && dist < bestDist))
                {
                    bestCount = c;
                    bestDist = dist;
                    best = b;
                }
            }
            if (best >= 0)
            {
                target[s] = best;
                chosen++;
                if (@base.Piece(best) == DtwVariants.ReplaceMarker(sp, blending.Marker, @base.Marker)) exact++;
            }
        }
        int forced = 0;
        if (blending.BosId is int sb && @base.BosId is int bb && sb < target.Length) { target[sb] = bb; forced++; }
        if (blending.EosId is int se && @base.EosId is int be && se < target.Length) { target[se] = be; forced++; }
        int unmapped = target.Count(t => t < 0);
        return new VocabMap(VocabMapType.Ms, target, VocabMap.HarmonisedKeys(blending, @base.Marker), null,
            new VocabMapStats(target.Length - unmapped, exact, chosen - exact, unmapped, forced), @base.UnkId ?? @base.EosId);
    }

    /// <summary>
    /// The MS scorer's <c>dist_fn</c> on pieces: Levenshtein of the marker-stripped strings; if either is empty, of the
    /// blending piece with its marker harmonised against the raw base piece; × 0.1 when one string contains the other.
    /// </summary>
    internal static double PieceDistance(string blendingPiece, string blendingMarker, string basePiece, string baseMarker)
    {
        string aa = DtwVariants.ReplaceMarker(blendingPiece, blendingMarker, "");
        string bb = DtwVariants.ReplaceMarker(basePiece, baseMarker, "");
        if (aa.Length == 0 || bb.Length == 0)
        {
            aa = DtwVariants.ReplaceMarker(blendingPiece, blendingMarker, baseMarker);
            bb = basePiece;
        }
        int d = Levenshtein.Distance(aa, bb);
        return aa.Contains(bb, StringComparison.Ordinal) || bb.Contains(aa, StringComparison.Ordinal) ? d * 0.1 : d;
    }
}
