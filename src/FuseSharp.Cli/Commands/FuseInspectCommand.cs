using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse inspect STORE [--json]</c>: what a fusion store holds, whether it is complete, and its size per position.</summary>
internal static class FuseInspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("STORE") { Description = "A store folder written by a fuse stage." };
        var json = new Option<bool>("--json") { Description = "Print JSON on stdout." };
        var cmd = new Command("inspect", "Show a fusion store's kind, columns, completeness per shard and bytes per position.") { path, json };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(path)!, pr.GetValue(json))));
        return cmd;
    }

    private static int Execute(string path, bool json)
    {
        var store = StoreReader.Open(path, requireComplete: false);
        var m = store.Manifest;
        long bytes = store.PartBytes();
        long positions = store.Parts.Where(p => p.Done).Sum(store.PartPositions);
        var missing = store.Missing.GroupBy(p => p.Shard).ToDictionary(g => g.Key, g => g.Count());
        var o = m.ToJson();
        o["parts_done"] = store.Parts.Count(p => p.Done);
        o["parts_total"] = store.Parts.Count;
        o["missing_by_shard"] = new JsonObject(missing.Select(kv => new KeyValuePair<string, JsonNode?>(kv.Key.ToString(CultureInfo.InvariantCulture), kv.Value)));
        o["positions"] = positions;
        o["bytes"] = bytes;
        o["bytes_per_position"] = positions == 0 ? null : Math.Round((double)bytes / positions, 3);
        if (json)
        {
            Console.Out.WriteLine(o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var inv = CultureInfo.InvariantCulture;
        Console.Out.WriteLine($"store:      {path}");
        Console.Out.WriteLine($"kind:       {m.Kind} (format v{StoreManifest.FormatVersion}, codec {m.Codec.Name()})");
        Console.Out.WriteLine(string.Create(inv, $"rows:       {m.Rows:N0} in {m.Shards} shard(s) of parts of {m.RowsPerPart} rows"));
        Console.Out.WriteLine(string.Create(inv, $"complete:   {store.Parts.Count(p => p.Done)}/{store.Parts.Count} parts") + (missing.Count == 0 ? "" : $"; missing in shard(s) {string.Join(", ", missing.Keys.Take(16))}"));
        var cols = new List<string> { "input_ids" };
        if (m.HasLabels) cols.Add("labels");
        if (m.K > 0) cols.Add($"topk[{m.K}]");
        if (m.HasTokenCe) cols.Add("token_ce");
        cols.AddRange(m.Lists.Select(l => $"{l.Name}[{l.ValueDType.ToString().ToLowerInvariant()}]"));
        if (m.HasChoice) cols.Add("choice");
        if (m.HasSegments) cols.Add("segments");
        cols.AddRange(m.Metrics.Select(x => "metric:" + x));
        Console.Out.WriteLine($"columns:    {string.Join(", ", cols)}");
        Console.Out.WriteLine(string.Create(inv, $"size:       {ConsoleProgress.FormatBytes(bytes)} for {positions:N0} positions") + (positions == 0 ? "" : string.Create(inv, $" = {(double)bytes / positions:0.0} bytes/position")));
        Console.Out.WriteLine($"corpus:     {m.CorpusSha256[..16]}...  config {m.ConfigHash[..16]}...");
        Console.Out.WriteLine($"info:       {m.Info.ToJsonString()}");
        return 0;
    }
}
