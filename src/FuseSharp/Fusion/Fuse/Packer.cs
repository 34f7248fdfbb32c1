namespace FuseSharp.Fusion.Fuse;

/// <summary>Options of <see cref="Packer"/>.</summary>
public sealed record PackingOptions
{
    /// <summary>Positions per block (<c>--model_max_length</c>, 2048 in FuseLLM).</summary>
    public int BlockSize { get; init; } = 2048;

    /// <summary>
    /// Documents per packing batch (the reference's <c>map(batched=True, batch_size=1000)</c>): each batch is
    /// concatenated and cut on its own, so every batch ends with a short block. 0 = one batch for everything.
    /// </summary>
    public int BatchDocuments { get; init; } = 1000;

    /// <summary>Sequence (default): block CE = token-weighted mean of the documents' CEs. Token: mean of the per-position CEs.</summary>
    public MetricGranularity MetricLevel { get; init; } = MetricGranularity.Sequence;
}

/// <summary>
/// FuseLLM's <c>packing.py</c> (spec §8): documents are concatenated (no separator beyond the EOS each already ends
/// with, no BOS, no attention reset) and cut into blocks of <see cref="PackingOptions.BlockSize"/> positions; the
/// remainder of each batch is kept as a short block. Every column is carried along, so a document split across two
/// blocks keeps the teacher distributions computed with its full context (as in the reference). Each block's
/// metric is, per candidate, the mean over the block's positions of the per-position repeated document CE, summed in
/// float64 from left to right (Python's <c>sum(x) / len(x)</c>).
/// </summary>
public static class Packer
{
    /// <summary>Packs rows (documents) into blocks, streaming: one batch of documents in memory at a time.</summary>
    /// <exception cref="FusionException">Rows disagree in their number of sources, or a row is inconsistent.</exception>
    public static IEnumerable<FusionRow> Pack(IEnumerable<FusionRow> documents, PackingOptions options)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BlockSize <= 0) throw new FusionException($"block size must be positive, got {options.BlockSize}");
        var batch = new List<FusionRow>();
        foreach (var doc in documents)
        {
            batch.Add(doc);
            if (options.BatchDocuments > 0 && batch.Count == options.BatchDocuments)
            {
                foreach (var block in PackBatch(batch, options)) yield return block;
                batch.Clear();
            }
        }
        if (batch.Count > 0)
        {
            foreach (var block in PackBatch(batch, options)) yield return block;
        }
    }

    private static IEnumerable<FusionRow> PackBatch(List<FusionRow> docs, PackingOptions options)
    {
        int sources = docs[0].Sources.Count;
        for (int d = 0; d < docs.Count; d++)
        {
            docs[d].Validate($"document {d}");
            if (docs[d].Sources.Count != sources)
                throw new FusionException($"document {d} has {docs[d].Sources.Count} aligned sources, the first has {sources}", "align every source for every document before packing");
        }
        long total = docs.Sum(d => (long)d.Positions);
        int bs = options.BlockSize;
        int docIndex = 0, docPos = 0;
        for (long start = 0; start < total; start += bs)
        {
            int len = (int)Math.Min(bs, total - start);
            var segments = new List<RowSegment>();
            var pieces = new List<(FusionRow Doc, int Start, int Count)>();
            int filled = 0;
            while (filled < len)
            {
                var doc = docs[docIndex];
                int take = Math.Min(doc.Positions - docPos, len - filled);
                if (take > 0)
                {
                    long docId = doc.Segments.Count > 0 ? doc.Segments[0].Document : docIndex;
                    int docStart = doc.Segments.Count > 0 ? doc.Segments[0].Start : 0;
                    segments.Add(new RowSegment(docId, docStart + docPos, docStart + docPos + take, filled));
                    pieces.Add((doc, docPos, take));
                    filled += take;
                    docPos += take;
                }
                if (docPos == doc.Positions)
                {
                    docIndex++;
                    docPos = 0;
                }
            }
            yield return Assemble(pieces, sources, segments, options.MetricLevel);
        }
    }

    private static FusionRow Assemble(List<(FusionRow Doc, int Start, int Count)> pieces, int sources, List<RowSegment> segments, MetricGranularity level)
    {
        int n = pieces.Sum(p => p.Count);
        var ids = new int[n];
        var labels = new int[n];
        int o = 0;
        foreach (var (doc, start, count) in pieces)
        {
            Array.Copy(doc.InputIds, start, ids, o, count);
            Array.Copy(doc.Labels, start, labels, o, count);
            o += count;
        }
        var target = SparseRows.Concat(pieces.Select(p => p.Doc.Target.Slice(p.Start, p.Count)).ToList());
        var src = new SparseRows[sources];
        for (int s = 0; s < sources; s++) src[s] = SparseRows.Concat(pieces.Select(p => p.Doc.Sources[s].Slice(p.Start, p.Count)).ToList());

        int candidates = 1 + sources;
        var metrics = new double[candidates];
        float[]?[]? tokenMetrics = null;
        bool haveTokens = pieces.All(p => p.Doc.TokenMetrics is not null);
        if (haveTokens)
        {
            tokenMetrics = new float[]?[candidates];
            for (int c = 0; c < candidates; c++)
            {
                if (pieces.Any(p => p.Doc.TokenMetrics![c] is null)) continue;
                var m = new float[n];
                o = 0;
                foreach (var (doc, start, count) in pieces)
                {
                    Array.Copy(doc.TokenMetrics![c]!, start, m, o, count);
                    o += count;
                }
                tokenMetrics[c] = m;
            }
        }
        for (int c = 0; c < candidates; c++)
        {
            if (level == MetricGranularity.Sequence)
            {
                // sum([x] * n_d for each document piece) / n, left to right in float64.
                double sum = 0;
                foreach (var (doc, _, count) in pieces)
                {
                    double v = doc.Metrics[c];
                    for (int i = 0; i < count; i++) sum += v;
                }
                metrics[c] = sum / n;
            }
            else
            {
                var m = tokenMetrics?[c] ?? throw new FusionException("token-level packing needs per-position CEs for every candidate", "use --metric-level sequence");
                double sum = 0;
                int counted = 0;
                foreach (var v in m)
                {
                    if (float.IsNaN(v)) continue;
                    sum += v;
                    counted++;
                }
                metrics[c] = counted == 0 ? double.NaN : sum / counted;
            }
        }
        return new FusionRow
        {
            InputIds = ids,
            Labels = labels,
            Target = target,
            Sources = src,
            Metrics = metrics,
            TokenMetrics = tokenMetrics,
            Segments = segments,
        };
    }
}
