using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Stages;

/// <summary>A tokenizer as the align stage needs it: the vocabulary, and (for FuseChat v2's decoded strings) per-id decoding.</summary>
public sealed record AlignTokenizer(TokenVocabulary Vocabulary, Func<int, string>? DecodeOne = null);

/// <summary>Options of <see cref="AlignStage"/>.</summary>
public sealed record AlignStageOptions
{
    /// <summary>The distribution-alignment method and fallback.</summary>
    public DistributionAlignerOptions Aligner { get; init; } = new();

    /// <summary>
    /// Same-vocabulary source (FuseChat <c>replace_model</c>): no DTW, the source's top-k is copied position by
    /// position; both tokenizations must be identical.
    /// </summary>
    public bool Copy { get; init; }

    /// <summary>DTW cost and tie order; null = FuseLLM for the FuseLLM methods, FuseChat v2 for the FuseChat ones.</summary>
    public DtwVariant? Variant { get; init; }

    /// <summary>Compare decoded strings (FuseChat v2 as shipped) instead of pieces; null = true for the FuseChat methods.</summary>
    public bool? Decoded { get; init; }

    public DtwMode Mode { get; init; } = DtwMode.Banded;

    public ShardSpec Shard { get; init; } = ShardSpec.All;

    public bool Overwrite { get; init; }

    /// <summary>Extra provenance recorded in the manifest (e.g. the vocabulary map's hash).</summary>
    public JsonObject? Info { get; init; }
}

/// <summary>
/// <c>fuse align</c>: reads the target's and one source's representation stores (same corpus, row by row), aligns
/// every document (DTW over token strings, then distribution alignment), and writes an "aligned" store in target
/// positions: per position the (target id, value) list, its <see cref="AlignmentOutcome"/> and the source's CE at the
/// source position used, plus the source's document CE. Parts run in parallel; a killed run resumes.
/// </summary>
public static class AlignStage
{
    public const string ListName = "aligned";

    public static StageReport Run(StoreReader target, StoreReader source, AlignTokenizer baseTok, AlignTokenizer blendingTok, VocabMap? map,
        string outFolder, AlignStageOptions options, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(baseTok);
        ArgumentNullException.ThrowIfNull(blendingTok);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= NullProgress.Instance;
        if (target.Manifest.Kind != "representation" || source.Manifest.Kind != "representation")
            throw new FusionException($"align reads representation stores (got {target.Manifest.Kind} and {source.Manifest.Kind})", "pass the outputs of `fusesharp fuse represent`");
        if (target.Manifest.K == 0 || source.Manifest.K == 0)
            throw new FusionException("the representation stores hold no top-k columns");
        target.RequireSameCorpus(source, "the target representation", "the source representation");

        var ao = options.Aligner;
        bool fuseChat = ao.IsFuseChat;
        var variant = options.Variant ?? (fuseChat ? DtwVariant.FuseChatV2 : DtwVariant.FuseLlm);
        bool decoded = options.Decoded ?? fuseChat;
        if (decoded && (baseTok.DecodeOne is null || blendingTok.DecodeOne is null))
            throw new FusionException("decoded-string alignment needs both tokenizers' decoders", "load the tokenizers, or align pieces (--strings pieces)");
        var aligner = options.Copy ? null : new DistributionAligner(baseTok.Vocabulary, blendingTok.Vocabulary, map, ao);

        var info = new JsonObject
        {
            ["stage"] = "align",
            ["target"] = target.Manifest.ConfigHash,
            ["source"] = source.Manifest.ConfigHash,
            ["method"] = options.Copy ? "copy" : ao.Method.ToString(),
            ["fallback"] = options.Copy ? null : ao.Fallback.ToString(),
            ["token_alignment_matrix"] = options.Copy ? null : ao.UseTokenAlignmentMatrix,
            ["first_token_marker"] = options.Copy ? null : ao.FirstTokenMarker.ToString(),
            ["dtw"] = options.Copy ? null : variant.Name(),
            ["strings"] = options.Copy ? null : decoded ? "decoded" : "pieces",
            ["base_marker"] = baseTok.Vocabulary.Marker,
            ["blending_marker"] = blendingTok.Vocabulary.Marker,
        };
        if (options.Info is not null)
            foreach (var (k, v) in options.Info) info[k] = v?.DeepClone();
        var manifest = new StoreManifest
        {
            Kind = "aligned",
            Rows = target.Rows,
            CorpusSha256 = target.Manifest.CorpusSha256,
            Shards = options.Shard.Count,
            RowsPerPart = target.Manifest.RowsPerPart,
            Codec = target.Manifest.Codec,
            Lists = [new StoreListSpec(ListName, DType.F16, Outcomes: true, TokenCe: true)],
            Metrics = ["metric_ce"],
            Info = info,
        };
        var writer = StoreWriter.Open(outFolder, manifest, options.Shard, options.Overwrite);
        var report = new StageReport("align");
        var baseStrings = new ConcurrentDictionary<int, string>();
        var blendStrings = new ConcurrentDictionary<int, string>();
        string BaseString(int id) => decoded ? baseStrings.GetOrAdd(id, i => baseTok.DecodeOne!(i)) : baseTok.Vocabulary.RequirePiece(id);
        string BlendString(int id) => decoded ? blendStrings.GetOrAdd(id, i => blendingTok.DecodeOne!(i)) : blendingTok.Vocabulary.RequirePiece(id);

        var pending = writer.Pending;
        using var task = progress.Start($"align {(options.Copy ? "copy" : ao.Method.ToString())}", pending.Sum(p => (long)p.Rows));
        task.SetCompleted(0);
        FusionParallel.ForEach(pending, part =>
        {
            cancel.ThrowIfCancellationRequested();
            var tRows = target.ReadRange(part.FirstRow, part.Rows);
            var sRows = source.ReadRange(part.FirstRow, part.Rows);
            var outRows = new List<StoreRow>(part.Rows);
            var counts = new long[6];
            for (int r = 0; r < part.Rows; r++)
            {
                cancel.ThrowIfCancellationRequested();
                var t = tRows[r];
                var s = sRows[r];
                if (t.Hash != s.Hash)
                    throw new FusionException($"document {t.Index} differs between the target and source representations (text hash)", "both must be made from the same corpus file");
                outRows.Add(options.Copy ? CopyRow(t, s) : AlignRow(t, s, aligner!, variant, options.Mode, BaseString, BlendString, baseTok.Vocabulary.Marker, blendingTok.Vocabulary.Marker, source.Manifest.K));
                foreach (var o in outRows[^1].Lists[0].Outcomes!) counts[o]++;
                task.Advance();
            }
            writer.Write(part, outRows);
            for (int o = 0; o < counts.Length; o++) if (counts[o] > 0) report.Add("target positions", OutcomeLabel((AlignmentOutcome)o), counts[o]);
        }, cancel);
        cancel.ThrowIfCancellationRequested();
        report.Set("documents", target.Rows);
        report.Set("shard", options.Shard.ToString());
        report.Set("method", info["method"]?.DeepClone());
        report.Set("dtw", info["dtw"]?.DeepClone());
        return report;
    }

    /// <summary>Diagnostics label of an outcome.</summary>
    public static string OutcomeLabel(AlignmentOutcome o) => o switch
    {
        AlignmentOutcome.Exact => "matched 1:1 (exact)",
        AlignmentOutcome.Mapped => "matched 1:1 (MinED / MS map)",
        AlignmentOutcome.OneToMany => "1:n resolved",
        AlignmentOutcome.FallbackUnmatched => "fallback (1:1 unmatched)",
        AlignmentOutcome.FallbackOneToMany => "fallback (1:n)",
        _ => "empty (target's own)",
    };

    internal static StoreRow AlignRow(StoreRow t, StoreRow s, DistributionAligner aligner, DtwVariant variant, DtwMode mode,
        Func<int, string> baseString, Func<int, string> blendString, string baseMarker, string blendMarker, int k)
    {
        var bs = t.InputIds.Select(baseString).ToArray();
        var ss = s.InputIds.Select(blendString).ToArray();
        var dtw = TokenDtw.Align(ss, bs, variant, blendMarker, baseMarker, mode);
        var doc = aligner.Align(new AlignmentInput(t.InputIds, bs, s.InputIds, ss, dtw, s.TopK!.Ids, s.TopK.Values, k));
        var ce = new float[doc.Positions];
        for (int i = 0; i < ce.Length; i++) ce[i] = doc.SourcePositions[i] >= 0 && s.TokenCe is { } tc ? tc[doc.SourcePositions[i]] : float.NaN;
        return new StoreRow
        {
            Index = t.Index,
            Hash = t.Hash,
            InputIds = t.InputIds,
            Lists = [new StoreList(ListName, doc.Lists) { Outcomes = doc.Outcomes.Select(o => (byte)o).ToArray(), TokenCe = ce }],
            Metrics = [s.Metrics.Length > 0 ? s.Metrics[0] : double.NaN],
        };
    }

    private static StoreRow CopyRow(StoreRow t, StoreRow s)
    {
        if (!t.InputIds.AsSpan().SequenceEqual(s.InputIds))
            throw new FusionException($"document {t.Index}: the source's tokenization differs from the target's ({s.InputIds.Length} vs {t.InputIds.Length} tokens)",
                "same-vocabulary copy (--method copy) needs identical tokenizations; align with DTW instead");
        return new StoreRow
        {
            Index = t.Index,
            Hash = t.Hash,
            InputIds = t.InputIds,
            Lists = [new StoreList(ListName, s.TopK!) { Outcomes = new byte[t.Positions], TokenCe = s.TokenCe ?? Enumerable.Repeat(float.NaN, t.Positions).ToArray() }],
            Metrics = [s.Metrics.Length > 0 ? s.Metrics[0] : double.NaN],
        };
    }
}
