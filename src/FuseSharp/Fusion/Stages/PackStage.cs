using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Fusion.Stages;

/// <summary><c>fuse pack</c>: FuseLLM packing (spec §8, <see cref="Packer"/>) from documents into a dataset store of blocks.</summary>
public static class PackStage
{
    public static StageReport Run(FusionDataset data, string outFolder, PackingOptions options, bool overwrite = false,
        IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= NullProgress.Instance;
        if (options.BlockSize <= 0) throw new FusionException($"block size must be positive, got {options.BlockSize}");
        // Number of blocks, from the row lengths alone: each batch of documents is cut on its own.
        var lengths = data.RowLengths();
        long blocks = 0;
        int batch = options.BatchDocuments > 0 ? options.BatchDocuments : Math.Max(1, lengths.Length);
        for (int start = 0; start < lengths.Length; start += batch)
        {
            long total = 0;
            for (int i = start; i < Math.Min(lengths.Length, start + batch); i++) total += lengths[i];
            blocks += (total + options.BlockSize - 1) / options.BlockSize;
        }
        var info = new JsonObject
        {
            ["stage"] = "pack",
            ["inputs"] = data.Inputs,
            ["block_size"] = options.BlockSize,
            ["batch_documents"] = options.BatchDocuments,
            ["metric_level"] = options.MetricLevel.ToString(),
        };
        var manifest = FusionDataset.DatasetManifest(blocks, data.CorpusSha256, data.K, data.Sources, data.Codec, data.RowsPerPart, info);
        var writer = StoreWriter.Open(outFolder, manifest, ShardSpec.All, overwrite);
        var report = new StageReport("pack");
        report.Set("documents", data.Rows);
        report.Set("blocks", blocks);
        report.Set("positions", lengths.Sum(x => (long)x));
        if (writer.Pending.Count == 0) return report;

        var docHash = new Dictionary<long, long>();
        IEnumerable<FusionRow> Docs()
        {
            foreach (var (hash, row) in data.ReadRows())
            {
                docHash[row.Segments[0].Document] = hash;
                yield return row;
            }
        }
        using var task = progress.Start("pack", blocks);
        var parts = writer.Parts;
        int pi = 0;
        var buffer = new List<StoreRow>();
        long index = 0;
        foreach (var block in Packer.Pack(Docs(), options))
        {
            cancel.ThrowIfCancellationRequested();
            report.Add("blocks", block.Positions == options.BlockSize ? "full" : "short (end of a batch)");
            report.Add("documents per block", block.Segments.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (!parts[pi].Done) buffer.Add(FusionDataset.ToDatasetRow(block, index, FusionDataset.BlockHash(block.Segments, d => docHash[d])));
            index++;
            task.Advance();
            if (index == parts[pi].FirstRow + parts[pi].Rows)
            {
                if (!parts[pi].Done) writer.Write(parts[pi], buffer);
                buffer.Clear();
                pi++;
            }
        }
        if (index != blocks) throw new InvalidOperationException($"packing produced {index} blocks, {blocks} were planned");
        return report;
    }
}
