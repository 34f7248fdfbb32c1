using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Vocab;

namespace FuseSharp.Fusion.Alignment;

/// <summary>How a source's top-k distributions are carried onto the target's positions and vocabulary (spec §4.2, §4.3, §5).</summary>
public enum AlignmentMethod
{
    /// <summary>FuseLLM <c>vocab_align_type hard</c> (EM): 1:1 positions whose pieces are equal after marker harmonisation.</summary>
    FuseLlmHard,

    /// <summary>FuseLLM <c>vocab_align_type soft</c> (MinED; the README setting): equal pieces, or the MinED map sends the source piece to the target piece.</summary>
    FuseLlmSoft,

    /// <summary>FuseChat v2 <c>align_type hard</c> (EM) on decoded strings.</summary>
    FuseChatEm,

    /// <summary>
    /// FuseChat v2 <c>align_type soft</c> (MinED), as intended: the shipped match test looks a decoded string up in
    /// the piece vocabulary and indexes the map by position (it raises KeyError); implemented as
    /// <c>map[source id] == target id</c> or equal decoded strings.
    /// </summary>
    FuseChatMinEd,

    /// <summary>FuseChat v2 <c>align_type default</c> (MS, statistics): one decoded string ends with the other; 1:n resolved through the pieces.</summary>
    FuseChatMs,
}

/// <summary>Which target token an unmatched position's one-hot fallback names (spec §14.1).</summary>
public enum FallbackTarget
{
    /// <summary>The next target token t_{i+1} (the last position repeats its own token): what position i predicts. FuseChat v2's fix; the default.</summary>
    Next,

    /// <summary>The current token t_i, as FuseLLM and FuseChat v1 ship it (issue #27): the target learns to repeat its input.</summary>
    Current,
}

/// <summary>When FuseLLM's first-token marker case applies (see <see cref="DistributionAlignerOptions.FirstTokenMarker"/>).</summary>
public enum FirstTokenMarkerCase
{
    /// <summary>When the source tokenizer class is GPT-NeoX or GPT-2 (<see cref="TokenVocabulary.TokenizerClass"/>), as the reference.</summary>
    Auto,

    /// <summary>Always (FuseLLM methods).</summary>
    On,

    /// <summary>Never.</summary>
    Off,
}

/// <summary>What happened at one target position (for diagnostics and per-token metrics).</summary>
public enum AlignmentOutcome : byte
{
    /// <summary>1:1 (or n:1) and the token strings are equal: the source's distribution is used.</summary>
    Exact = 0,

    /// <summary>1:1 and matched through the vocabulary map (MinED) or a suffix relation (MS): the source's distribution is used.</summary>
    Mapped = 1,

    /// <summary>1:n resolved to one source position (MS with the alignment matrix): its distribution is used.</summary>
    OneToMany = 2,

    /// <summary>1:1 but unmatched: one-hot fallback.</summary>
    FallbackUnmatched = 3,

    /// <summary>1:n: one-hot fallback.</summary>
    FallbackOneToMany = 4,

    /// <summary>Matched, but no candidate survived the mapping (or MS's decomposition failed): an empty list, for which the trainer uses the target's own distribution.</summary>
    Empty = 5,
}

/// <summary>Options of <see cref="DistributionAligner"/>.</summary>
public sealed record DistributionAlignerOptions
{
    public AlignmentMethod Method { get; init; } = AlignmentMethod.FuseLlmSoft;

    public FallbackTarget Fallback { get; init; } = FallbackTarget.Next;

    /// <summary>FuseChat v2 MS: resolve 1:n positions through the pieces (<c>--use_token_alignment_matrix</c>, the README setting). Default on.</summary>
    public bool UseTokenAlignmentMatrix { get; init; } = true;

    /// <summary>
    /// FuseLLM's "special case for mpt": at target position 0, when the target piece starts with the target marker and
    /// the source piece does not, the marker is prepended to the source piece before matching. The reference applies it
    /// to GPT-NeoX and GPT-2 tokenizer classes only (not to other byte-level families such as Qwen2).
    /// </summary>
    public FirstTokenMarkerCase FirstTokenMarker { get; init; } = FirstTokenMarkerCase.Auto;

    /// <summary>True for the FuseChat v2 methods (decoded strings, v2 DTW).</summary>
    public bool IsFuseChat => Method is AlignmentMethod.FuseChatEm or AlignmentMethod.FuseChatMinEd or AlignmentMethod.FuseChatMs;
}

/// <summary>
/// The aligned distributions of one document in target positions: per position a list of (target id, value),
/// values being raw source logits or the literal 1.0 of a one-hot, exactly as the reference stores
/// <c>per_step_aligned_logits/indices</c>. An empty list means "use the target's own distribution" (§7.2).
/// </summary>
public sealed class AlignedDocument
{
    internal AlignedDocument(SparseRows lists, AlignmentOutcome[] outcomes, int[] sourcePositions)
    {
        Lists = lists;
        Outcomes = outcomes;
        SourcePositions = sourcePositions;
    }

    /// <summary>The aligned (target id, value) lists per target position.</summary>
    public SparseRows Lists { get; }

    public AlignmentOutcome[] Outcomes { get; }

    /// <summary>Per target position: the source position whose distribution was used, or -1 (fallback or empty).</summary>
    public int[] SourcePositions { get; }

    public int Positions => Outcomes.Length;
}

/// <summary>
/// One document for <see cref="DistributionAligner.Align"/>: both tokenizations, the strings the reference compares
/// (pieces for FuseLLM, per-token decoded strings for FuseChat v2), the DTW alignment of those strings, and the
/// source's top-k ids (source vocabulary) and logits per source position (row-major, k per position, descending).
/// </summary>
public sealed record AlignmentInput(
    IReadOnlyList<int> BaseIds,
    IReadOnlyList<string> BaseTokens,
    IReadOnlyList<int> BlendingIds,
    IReadOnlyList<string> BlendingTokens,
    DtwAlignment Alignment,
    ReadOnlyMemory<int> TopKIds,
    ReadOnlyMemory<float> TopKLogits,
    int K);

/// <summary>
/// Distribution alignment: maps a source's per-position top-k onto the target's positions and vocabulary, following
/// FuseLLM <c>token_alignment.transform_step_logits</c> and FuseChat v2 <c>align_token_and_vocab.transform_step_logits</c>
/// exactly (spec §4.2–§4.3; the rules are in the README of the fusion fixtures). Candidates are walked in top-k order
/// and a target id already in the list is skipped, so collisions keep the highest logit and mass is never summed.
/// Thread-safe: one instance serves all documents of a source.
/// </summary>
public sealed class DistributionAligner
{
    private const int Unknown = -2;

    private readonly TokenVocabulary _base;
    private readonly TokenVocabulary _blending;
    private readonly VocabMap? _map;
    private readonly int[]? _mapList;
    private readonly int[] _candidate; // source id -> target id (-1 = dropped), filled lazily
    private readonly string _bm, _sm;
    private readonly bool _firstTokenCase;

    /// <param name="base">The target vocabulary.</param>
    /// <param name="blending">The source vocabulary.</param>
    /// <param name="map">The vocabulary map: MinED for <see cref="AlignmentMethod.FuseLlmSoft"/> and <see cref="AlignmentMethod.FuseChatMinEd"/>, MS for <see cref="AlignmentMethod.FuseChatMs"/>; unused by the EM methods.</param>
    /// <param name="options">Method and fallback.</param>
    /// <exception cref="FusionException">The method needs a map and none was given.</exception>
    public DistributionAligner(TokenVocabulary @base, TokenVocabulary blending, VocabMap? map, DistributionAlignerOptions options)
    {
        _base = @base ?? throw new ArgumentNullException(nameof(@base));
        _blending = blending ?? throw new ArgumentNullException(nameof(blending));
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _bm = @base.Marker;
        _sm = blending.Marker;
        bool needsMap = options.Method is AlignmentMethod.FuseLlmSoft or AlignmentMethod.FuseChatMinEd or AlignmentMethod.FuseChatMs;
        if (needsMap && map is null)
            throw new FusionException($"alignment method {options.Method} needs a vocabulary map", "build one with `fusesharp fuse vocab-map` (--type mined, or --type ms for MS) and pass --map");
        if (map is not null && map.Count != blending.Count)
            throw new FusionException($"the vocabulary map covers {map.Count} source ids but the source vocabulary {blending.Name} has {blending.Count}", "the map was made for another source tokenizer");
        _map = map;
        _mapList = map?.ToIdList(map.UnmappedId ?? -1);
        _candidate = new int[blending.Count];
        Array.Fill(_candidate, Unknown);
        _firstTokenCase = options.FirstTokenMarker switch
        {
            FirstTokenMarkerCase.On => true,
            FirstTokenMarkerCase.Off => false,
            _ => blending.TokenizerClass is { } c && (c.StartsWith("GPTNeoXTokenizer", StringComparison.Ordinal) || c.StartsWith("GPT2Tokenizer", StringComparison.Ordinal)),
        };
    }

    public DistributionAlignerOptions Options { get; }

    /// <summary>Aligns one document.</summary>
    /// <exception cref="FusionException">The inputs disagree in length, or an id is outside its vocabulary.</exception>
    public AlignedDocument Align(AlignmentInput doc)
    {
        ArgumentNullException.ThrowIfNull(doc);
        int n = doc.BaseIds.Count, ns = doc.BlendingIds.Count, k = doc.K;
        if (doc.BaseTokens.Count != n || doc.BlendingTokens.Count != ns || doc.Alignment.BaseLength != n || doc.Alignment.BlendingLength != ns)
            throw new FusionException($"alignment inputs disagree: {n} target ids, {doc.BaseTokens.Count} target strings, {ns} source ids, {doc.BlendingTokens.Count} source strings, DTW over {doc.Alignment.BaseLength} x {doc.Alignment.BlendingLength}");
        if (k <= 0 || doc.TopKIds.Length != ns * k || doc.TopKLogits.Length != ns * k)
            throw new FusionException($"the source representation has {doc.TopKIds.Length} top-k ids and {doc.TopKLogits.Length} logits for {ns} positions at k = {k}", "the source representation and the source tokenization do not belong together");

        var offsets = new int[n + 1];
        var ids = new List<int>(n * Math.Min(k, 4));
        var values = new List<float>(n * Math.Min(k, 4));
        var outcomes = new AlignmentOutcome[n];
        var sourcePos = new int[n];
        var topIds = doc.TopKIds.Span;
        var topLogits = doc.TopKLogits.Span;
        bool fuseChat = Options.IsFuseChat;

        for (int i = 0; i < n; i++)
        {
            int start = ids.Count;
            int used = -1;
            AlignmentOutcome outcome;
            int first = doc.Alignment.BaseFirst[i], last = doc.Alignment.BaseLast[i];
            if (first == last)
            {
                int j = first;
                var match = fuseChat ? MatchFuseChat(doc, i, j) : MatchFuseLlm(doc, i, j);
                if (match is { } m)
                {
                    used = j;
                    AppendCandidates(topIds.Slice(j * k, k), topLogits.Slice(j * k, k), ids, values, start);
                    outcome = m;
                }
                else
                {
                    outcome = AlignmentOutcome.FallbackUnmatched;
                }
            }
            else if (Options.Method == AlignmentMethod.FuseChatMs && Options.UseTokenAlignmentMatrix)
            {
                (used, outcome) = ResolveOneToMany(doc, i, first, last);
                if (used >= 0) AppendCandidates(topIds.Slice(used * k, k), topLogits.Slice(used * k, k), ids, values, start);
            }
            else
            {
                outcome = AlignmentOutcome.FallbackOneToMany;
            }

            if (outcome is AlignmentOutcome.FallbackUnmatched or AlignmentOutcome.FallbackOneToMany)
            {
                int target = Options.Fallback == FallbackTarget.Current ? doc.BaseIds[i] : doc.BaseIds[Math.Min(i + 1, n - 1)];
                ids.Add(target);
                values.Add(1.0f);
                used = -1;
            }
            else if (ids.Count == start)
            {
                outcome = AlignmentOutcome.Empty;
                used = -1;
            }
            outcomes[i] = outcome;
            sourcePos[i] = used;
            offsets[i + 1] = ids.Count;
        }
        return new AlignedDocument(new SparseRows(offsets, [.. ids], [.. values]), outcomes, sourcePos);
    }

    /// <summary>FuseLLM's 1:1 test on pieces; null when unmatched.</summary>
    private AlignmentOutcome? MatchFuseLlm(AlignmentInput doc, int i, int j)
    {
        string t = doc.BaseTokens[i];
        string s = DtwVariants.ReplaceMarker(doc.BlendingTokens[j], _sm, _bm);
        if (_firstTokenCase && _bm.Length > 0 && i == 0 && t.StartsWith(_bm, StringComparison.Ordinal) && !s.StartsWith(_bm, StringComparison.Ordinal))
            s = _bm + s; // "special case for mpt"
        if (t == s) return AlignmentOutcome.Exact;
        if (Options.Method == AlignmentMethod.FuseLlmSoft && _map!.TryMapKey(s, out int mapped) && _base.Piece(mapped) == t)
            return AlignmentOutcome.Mapped;
        return null;
    }

    /// <summary>FuseChat v2's 1:1 tests on decoded strings; null when unmatched.</summary>
    private AlignmentOutcome? MatchFuseChat(AlignmentInput doc, int i, int j)
    {
        string t = doc.BaseTokens[i];
        string s = DtwVariants.ReplaceMarker(doc.BlendingTokens[j], _sm, _bm);
        switch (Options.Method)
        {
            case AlignmentMethod.FuseChatEm:
                return t == s ? AlignmentOutcome.Exact : null;
            case AlignmentMethod.FuseChatMinEd:
                if (t == s) return AlignmentOutcome.Exact;
                int src = doc.BlendingIds[j];
                return (uint)src < (uint)_mapList!.Length && _mapList[src] == doc.BaseIds[i] ? AlignmentOutcome.Mapped : null;
            default:
                if (t == s) return AlignmentOutcome.Exact;
                return s.EndsWith(t, StringComparison.Ordinal) || t.EndsWith(s, StringComparison.Ordinal) ? AlignmentOutcome.Mapped : null;
        }
    }

    /// <summary>
    /// FuseChat v2 MS with the alignment matrix, one target token over source positions [first, last] (markers
    /// stripped from the decoded strings): the first member that ends with the target string or that the target ends
    /// with wins; otherwise a greedy decomposition of the target string into consecutive members. Returns the source
    /// position to use (-1 for none) and the outcome.
    /// </summary>
    private (int Position, AlignmentOutcome Outcome) ResolveOneToMany(AlignmentInput doc, int i, int first, int last)
    {
        string t = DtwVariants.ReplaceMarker(doc.BaseTokens[i], _bm, "");
        int count = last - first + 1;
        var members = new string[count];
        for (int q = 0; q < count; q++) members[q] = DtwVariants.ReplaceMarker(doc.BlendingTokens[first + q], _sm, "");
        // The reference also requires t != the base marker, which cannot hold once the marker is stripped.
        for (int q = 0; q < count; q++)
        {
            if (t.EndsWith(members[q], StringComparison.Ordinal) || members[q].EndsWith(t, StringComparison.Ordinal))
                return (first + q, AlignmentOutcome.OneToMany);
        }
        // find_map_idx: walk the members, consuming each that is a prefix of what is left; success only if nothing is left.
        string rest = t;
        int lastConsumed = -1;
        for (int q = 0; q < count; q++)
        {
            if (rest.StartsWith(members[q], StringComparison.Ordinal))
            {
                rest = rest[members[q].Length..];
                lastConsumed = q;
            }
        }
        bool decomposed = rest.Length == 0 && lastConsumed >= 0;
        string all = string.Concat(members);
        if (decomposed || all.EndsWith(t, StringComparison.Ordinal) || t.EndsWith(all, StringComparison.Ordinal))
        {
            // A full decomposition concatenates to t by construction: use the last consumed member. Otherwise the
            // reference appends nothing (an empty list: the trainer falls back to the target's own distribution).
            return decomposed ? (first + lastConsumed, AlignmentOutcome.OneToMany) : (-1, AlignmentOutcome.Empty);
        }
        return (-1, AlignmentOutcome.FallbackOneToMany);
    }

    private void AppendCandidates(ReadOnlySpan<int> topIds, ReadOnlySpan<float> topLogits, List<int> ids, List<float> values, int start)
    {
        for (int c = 0; c < topIds.Length; c++)
        {
            int target = CandidateTarget(topIds[c]);
            if (target < 0) continue;
            bool seen = false;
            for (int q = start; q < ids.Count && !seen; q++) seen = ids[q] == target;
            if (seen) continue; // the first (highest-logit) candidate for a target id wins; no summing
            ids.Add(target);
            values.Add(topLogits[c]);
        }
    }

    /// <summary>The target id a source candidate maps to under the method, or -1 when it is dropped.</summary>
    private int CandidateTarget(int sourceId)
    {
        if ((uint)sourceId >= (uint)_candidate.Length)
            throw new FusionException($"source top-k id {sourceId} is outside the source vocabulary {_blending.Name} ({_blending.Count} entries)",
                "the model's logit dimension exceeds the tokenizer's vocabulary; top-k ids beyond it have no piece");
        int cached = _candidate[sourceId];
        if (cached != Unknown) return cached;
        int r = -1;
        string? piece = _blending.Piece(sourceId);
        string? key = piece is null ? null : DtwVariants.ReplaceMarker(piece, _sm, _bm);
        switch (Options.Method)
        {
            case AlignmentMethod.FuseLlmHard or AlignmentMethod.FuseChatEm:
                r = key is not null && _base.Id(key) is int e ? e : -1;
                break;
            case AlignmentMethod.FuseLlmSoft:
                // map[piece] is a base piece; a key the map lacks is dropped (the reference would raise KeyError).
                r = key is not null && _map!.TryMapKey(key, out int m) ? m : -1;
                break;
            case AlignmentMethod.FuseChatMinEd:
                r = _mapList![sourceId];
                break;
            case AlignmentMethod.FuseChatMs:
                r = key is not null && _base.Id(key) is int x ? x : _mapList![sourceId];
                break;
        }
        _candidate[sourceId] = r;
        return r;
    }
}
