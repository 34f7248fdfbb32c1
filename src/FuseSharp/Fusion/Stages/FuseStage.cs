using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Stages;

/// <summary>
/// <c>fuse fuse</c>: MinCE / AvgCE over {target's own, sources} per row (document or packed block), writing a "fused"
/// store: per position the target distribution (ids and probabilities; BF16 values in the bf16-faithful mode), the
/// labels and the chosen candidate. What the trainer consumes as its teacher. Rows are independent: sharded and
/// parallel, resumable.
/// </summary>
public static class FuseStage
{
    public const string ListName = "fused";

    public static StageReport Run(FusionDataset data, string outFolder, FusionOptions options, ShardSpec shard, bool overwrite = false,
        IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        progress ??= NullProgress.Instance;
        int c = 1 + data.Sources;
        var info = new JsonObject
        {
            ["stage"] = "fuse",
            ["inputs"] = data.Inputs,
            ["rule"] = options.Rule.ToString(),
            ["granularity"] = options.Granularity.ToString(),
            ["temperature"] = options.Temperature,
            ["with_target"] = options.WithTarget,
            ["sources"] = options.Sources is null ? null : new JsonArray(options.Sources.Select(s => (JsonNode?)s).ToArray()),
            ["precision"] = options.Precision.ToString(),
        };
        var manifest = new StoreManifest
        {
            Kind = "fused",
            Rows = data.Rows,
            CorpusSha256 = data.CorpusSha256,
            Shards = shard.Count,
            RowsPerPart = data.RowsPerPart,
            Codec = data.Codec,
            HasLabels = true,
            HasChoice = true,
            HasSegments = true,
            Lists = [new StoreListSpec(ListName, options.Precision == FusionPrecision.Bf16 ? DType.BF16 : DType.F32)],
            Metrics = ["target", .. Enumerable.Range(0, data.Sources).Select(s => $"source{s}")],
            Info = info,
        };
        var writer = StoreWriter.Open(outFolder, manifest, shard, overwrite);
        var report = new StageReport("fuse");
        string Name(int cand) => cand == 0 ? "target" : $"source {cand - 1}";
        using var task = progress.Start($"fuse {options.Rule}", writer.Pending.Sum(p => (long)p.Rows));
        FusionParallel.ForEach(writer.Pending, part =>
        {
            cancel.ThrowIfCancellationRequested();
            var rows = data.ReadRange(part.FirstRow, part.Rows);
            var outRows = new List<StoreRow>(part.Rows);
            var rowChoices = new long[c];
            var posChoices = new long[c];
            for (int i = 0; i < rows.Count; i++)
            {
                var (hash, row) = rows[i];
                var fused = DistributionFusion.Fuse(row, options, $"row {part.FirstRow + i}");
                if (options.Rule == FusionRule.MinCe)
                {
                    foreach (int ch in fused.Choice) posChoices[ch]++;
                    if (options.Granularity == MetricGranularity.Sequence && fused.Choice.Length > 0) rowChoices[fused.Choice[0]]++;
                }
                outRows.Add(new StoreRow
                {
                    Index = part.FirstRow + i,
                    Hash = hash,
                    InputIds = row.InputIds,
                    Labels = row.Labels,
                    Lists = [new StoreList(ListName, fused.Distribution)],
                    Metrics = row.Metrics,
                    Choice = fused.Choice.Select(x => (sbyte)x).ToArray(),
                    Segments = [.. row.Segments],
                });
                task.Advance();
            }
            writer.Write(part, outRows);
            for (int k = 0; k < c; k++)
            {
                if (rowChoices[k] > 0) report.Add("MinCE choice per row", Name(k), rowChoices[k]);
                if (posChoices[k] > 0) report.Add("MinCE choice per position", Name(k), posChoices[k]);
            }
        }, cancel);
        cancel.ThrowIfCancellationRequested();
        report.Set("rows", data.Rows);
        report.Set("shard", shard.ToString());
        report.Set("rule", options.Rule.ToString());
        return report;
    }
}
