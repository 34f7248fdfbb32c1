using System.Collections.Concurrent;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Stages;

/// <summary>
/// <c>fuse vocab-map</c>: EM, MinED or MS vocabulary maps (spec §3) with a report of how each blending token was
/// mapped. MS needs co-alignment counts: from a corpus tokenized with both tokenizers, or from two representation
/// stores of the same corpus.
/// </summary>
public static class VocabMapStage
{
    /// <summary>Builds a map; <paramref name="counts"/> is required for <see cref="VocabMapType.Ms"/>.</summary>
    public static (VocabMap Map, StageReport Report) Run(TokenVocabulary blending, TokenVocabulary @base, VocabMapType type, CoAlignmentCounts? counts = null,
        MsScorer scorer = MsScorer.Faithful, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        var map = type switch
        {
            VocabMapType.Em => VocabMapper.Exact(blending, @base),
            VocabMapType.MinEd => VocabMapper.MinEd(blending, @base, progress, cancel),
            _ => MsVocabMapper.Build(counts ?? throw new FusionException("an MS map needs co-alignment statistics", "give --corpus FILE (tokenized with both tokenizers)"), blending, @base, scorer),
        };
        var report = new StageReport("vocab-map");
        report.Set("type", type.ToString());
        report.Set("blending", blending.Name);
        report.Set("base", @base.Name);
        report.Set("blending_marker", blending.Marker);
        report.Set("base_marker", @base.Marker);
        if (counts is not null)
        {
            report.Set("documents", counts.Documents);
            report.Set("co_aligned_pairs", counts.NonZero);
        }
        var s = map.Stats;
        report.Add("blending tokens", "exact after marker harmonisation", s.Exact);
        if (s.Nearest > 0) report.Add("blending tokens", type == VocabMapType.Ms ? "co-aligned (statistics)" : "nearest by edit distance", s.Nearest);
        if (s.Forced > 0) report.Add("blending tokens", "forced (BOS/EOS)", s.Forced);
        report.Add("blending tokens", "unmapped", s.Unmapped);
        if (map.Distances is { } d)
        {
            foreach (var g in Enumerable.Range(0, map.Count).Where(i => map[i] >= 0 && d[i] > 0).GroupBy(i => Math.Min(d[i], 5)).OrderBy(g => g.Key))
                report.Add("MinED distance", g.Key == 5 ? "5+" : g.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), g.Count());
        }
        return (map, report);
    }

    /// <summary>
    /// Co-alignment counts over a corpus (FuseChat v2's token-alignment pass): each row is tokenized as FuseChat v2
    /// does (text + EOS with special tokens, or the conversation template), both sides' tokens are decoded one by one
    /// as transformers' slow tokenizers decode them (<see cref="ReferenceSequences.PerTokenDecoder"/>),
    /// DTW (FuseChat v2 costs) aligns the decoded strings, and every base position counts its distinct aligned
    /// blending ids. Rows run in parallel; the counts do not depend on the thread count.
    /// </summary>
    /// <param name="corpus">JSONL corpus.</param>
    /// <param name="base">The base tokenizer.</param>
    /// <param name="blending">The blending tokenizer.</param>
    /// <param name="baseVocab">Its vocabulary view (marker, class).</param>
    /// <param name="blendingVocab">The blending vocabulary view.</param>
    /// <param name="format">Text or chat rows.</param>
    /// <param name="baseDecode">Per-token strings of the base side; default <see cref="ReferenceSequences.PerTokenDecoder"/>.</param>
    /// <param name="blendingDecode">Per-token strings of the blending side; default likewise.</param>
    /// <param name="progress">Progress reporter.</param>
    /// <param name="cancel">Cancellation.</param>
    public static CoAlignmentCounts CountCorpus(string corpus, ITokenizer @base, ITokenizer blending, TokenVocabulary baseVocab, TokenVocabulary blendingVocab,
        CorpusFormat format = CorpusFormat.Text, Func<int, string>? baseDecode = null, Func<int, string>? blendingDecode = null,
        IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(@base);
        ArgumentNullException.ThrowIfNull(blending);
        var options = new RepresentOptions { Format = format };
        baseDecode ??= ReferenceSequences.PerTokenDecoder(@base, baseVocab);
        var blendDecode = blendingDecode ?? ReferenceSequences.PerTokenDecoder(blending, blendingVocab);
        var baseDecoded = new ConcurrentDictionary<int, string>();
        var blendDecoded = new ConcurrentDictionary<int, string>();
        var total = new CoAlignmentCounts();
        using var task = (progress ?? NullProgress.Instance).Start("co-alignment counts", 0);
        var batch = new List<CorpusRecord>(256);
        void Flush()
        {
            var local = new CoAlignmentCounts[batch.Count];
            FusionParallel.ForEach(Enumerable.Range(0, batch.Count), i =>
            {
                var r = batch[i];
                int[] b = format == CorpusFormat.Chat ? options.Chat.Tokenize(r.Conversation!, @base).Ids : ReferenceSequences.FuseChatText(@base, r.Text!, @base.EosTokenId);
                int[] s = format == CorpusFormat.Chat ? options.Chat.Tokenize(r.Conversation!, blending).Ids : ReferenceSequences.FuseChatText(blending, r.Text!, blending.EosTokenId);
                if (b.Length == 0 || s.Length == 0) return;
                var bs = b.Select(id => baseDecoded.GetOrAdd(id, baseDecode)).ToArray();
                var ss = s.Select(id => blendDecoded.GetOrAdd(id, blendDecode)).ToArray();
                var dtw = TokenDtw.Align(ss, bs, DtwVariant.FuseChatV2, blendingVocab.Marker, baseVocab.Marker);
                local[i] = new CoAlignmentCounts();
                local[i].Add(b, s, dtw);
            }, cancel);
            foreach (var c in local) if (c is not null) total.Merge(c); // merged in row order: deterministic
            task.Advance(batch.Count);
            batch.Clear();
        }
        foreach (var r in FusionCorpus.Read(corpus, format))
        {
            batch.Add(r);
            if (batch.Count == 256) Flush();
        }
        if (batch.Count > 0) Flush();
        if (total.Documents == 0) throw new FusionException($"{corpus}: no rows to count co-alignments on");
        return total;
    }

    /// <summary>Co-alignment counts from two representation stores of the same corpus (their token ids), decoding with the given functions.</summary>
    public static CoAlignmentCounts CountStores(StoreReader target, StoreReader source, Func<int, string> baseDecode, Func<int, string> blendingDecode,
        string baseMarker, string blendingMarker, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        target.RequireSameCorpus(source, "the target representation", "the source representation");
        var baseDecoded = new ConcurrentDictionary<int, string>();
        var blendDecoded = new ConcurrentDictionary<int, string>();
        var perPart = new CoAlignmentCounts[target.Parts.Count];
        FusionParallel.ForEach(Enumerable.Range(0, target.Parts.Count), p =>
        {
            var part = target.Parts[p];
            var t = target.ReadRange(part.FirstRow, part.Rows);
            var s = source.ReadRange(part.FirstRow, part.Rows);
            var counts = new CoAlignmentCounts();
            for (int i = 0; i < t.Count; i++)
            {
                var bs = t[i].InputIds.Select(id => baseDecoded.GetOrAdd(id, baseDecode)).ToArray();
                var ss = s[i].InputIds.Select(id => blendDecoded.GetOrAdd(id, blendingDecode)).ToArray();
                counts.Add(t[i].InputIds, s[i].InputIds, TokenDtw.Align(ss, bs, DtwVariant.FuseChatV2, blendingMarker, baseMarker));
            }
            perPart[p] = counts;
        }, cancel);
        var total = new CoAlignmentCounts();
        foreach (var c in perPart) total.Merge(c);
        return total;
    }
}
