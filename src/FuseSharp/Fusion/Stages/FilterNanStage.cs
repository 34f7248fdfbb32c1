using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Report;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Fusion.Stages;

/// <summary>
/// <c>fuse filter-nan</c> (FuseChat <c>filter_nan.py</c>, FuseLLM <c>packing.py --fiter_nan</c>; spec §9): keeps the
/// rows whose CE metrics are all numbers. A NaN comes from a row without any supervised token (0/0, e.g. a response
/// truncated away) or from an fp16 overflow. Writes a dataset store; each row remembers its original document.
/// </summary>
public static class FilterNanStage
{
    /// <param name="data">The rows to filter.</param>
    /// <param name="outFolder">Output dataset store.</param>
    /// <param name="candidates">Which metrics to test (0 = target, 1.. = sources); null = all (FuseChat v1 and FuseLLM test all three).</param>
    /// <param name="overwrite">Replace an existing store of another configuration.</param>
    /// <param name="progress">Progress reporter.</param>
    /// <param name="cancel">Cancellation.</param>
    public static StageReport Run(FusionDataset data, string outFolder, IReadOnlyList<int>? candidates = null, bool overwrite = false,
        IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        progress ??= NullProgress.Instance;
        int c = 1 + data.Sources;
        var test = candidates ?? Enumerable.Range(0, c).ToList();
        if (test.Any(x => x < 0 || x >= c)) throw new FusionException($"candidate indices must be in 0..{c - 1} (0 = target)");
        var metrics = data.Metrics();
        var keep = new List<long>();
        var report = new StageReport("filter-nan");
        for (long r = 0; r < data.Rows; r++)
        {
            var bad = test.Where(x => double.IsNaN(metrics[r * c + x])).ToList();
            if (bad.Count == 0) keep.Add(r);
            foreach (var x in bad) report.Add("NaN metric", x == 0 ? "target" : $"source {x - 1}");
        }
        report.Add("rows", "kept", keep.Count);
        report.Add("rows", "removed", data.Rows - keep.Count);
        var info = new JsonObject
        {
            ["stage"] = "filter-nan",
            ["inputs"] = data.Inputs,
            ["candidates"] = new JsonArray(test.Select(x => (JsonNode?)x).ToArray()),
        };
        var manifest = FusionDataset.DatasetManifest(keep.Count, data.CorpusSha256, data.K, data.Sources, data.Codec, data.RowsPerPart, info);
        var writer = StoreWriter.Open(outFolder, manifest, ShardSpec.All, overwrite);
        using var task = progress.Start("filter-nan", data.Rows);
        var parts = writer.Parts;
        int pi = 0, ki = 0;
        long position = -1;
        var buffer = new List<StoreRow>();
        foreach (var (hash, row) in data.ReadRows())
        {
            cancel.ThrowIfCancellationRequested();
            task.Advance();
            position++;
            if (ki >= keep.Count || position != keep[ki]) continue;
            if (!parts[pi].Done) buffer.Add(FusionDataset.ToDatasetRow(row, ki, hash));
            ki++;
            if (ki == parts[pi].FirstRow + parts[pi].Rows)
            {
                if (!parts[pi].Done) writer.Write(parts[pi], buffer);
                buffer.Clear();
                pi++;
            }
        }
        report.Set("rows_in", data.Rows);
        report.Set("rows_out", keep.Count);
        return report;
    }
}
