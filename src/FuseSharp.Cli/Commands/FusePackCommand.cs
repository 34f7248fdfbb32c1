using System.CommandLine;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse pack</c>: FuseLLM packing of documents into fixed-size blocks (spec §8).</summary>
internal static class FusePackCommand
{
    public static Command Create()
    {
        var data = new FuseDataOptions();
        var output = new Option<string>("--out") { Description = "Output dataset store folder.", Required = true };
        var blockSize = new Option<int>("--block-size") { Description = "Positions per block (FuseLLM: 2048).", DefaultValueFactory = _ => 2048 };
        var batch = new Option<int>("--batch-documents") { Description = "Documents per packing batch; each batch ends with a short block (reference: 1000; 0 = one batch).", DefaultValueFactory = _ => 1000 };
        var level = new Option<string>("--metric-level") { Description = "sequence (block CE = token-weighted mean of document CEs; default) or token (mean of per-position CEs).", DefaultValueFactory = _ => "sequence" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing store of another configuration." };
        var cmd = new Command("pack", "Concatenate documents and cut them into blocks, carrying every column (FuseLLM packing.py).");
        data.AddTo(cmd);
        cmd.Options.Add(output);
        cmd.Options.Add(blockSize);
        cmd.Options.Add(batch);
        cmd.Options.Add(level);
        cmd.Options.Add(overwrite);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var options = new PackingOptions
            {
                BlockSize = p.Get(blockSize),
                BatchDocuments = p.Get(batch),
                MetricLevel = FuseFuseCommand.ParseGranularity(p.Get(level)!, "--metric-level"),
            };
            var report = PackStage.Run(data.Open(p), p.Get(output)!, options, p.Get(overwrite), ConsoleProgress.Instance, CliContext.Cancellation);
            FuseDataOptions.Finish(report, p.Get(output)!);
            return 0;
        }));
        return cmd;
    }
}
