using System.CommandLine;
using FuseSharp.Fusion.Stages;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse filter-nan</c>: drop rows whose CE metrics are NaN (FuseChat filter_nan.py, spec §9).</summary>
internal static class FuseFilterNanCommand
{
    public static Command Create()
    {
        var data = new FuseDataOptions();
        var output = new Option<string>("--out") { Description = "Output dataset store folder.", Required = true };
        var candidates = new Option<string?>("--candidates") { Description = "Comma-separated candidates whose metric is tested (0 = target, 1.. = sources); default all." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing store of another configuration." };
        var cmd = new Command("filter-nan", "Keep only rows whose CE metrics are numbers (rows without supervised tokens or with fp16 overflow have NaN).");
        data.AddTo(cmd);
        cmd.Options.Add(output);
        cmd.Options.Add(candidates);
        cmd.Options.Add(overwrite);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var list = p.Get(candidates) is { } s ? FuseFuseCommand.ParseInts(s, "--candidates") : null;
            var report = FilterNanStage.Run(data.Open(p), p.Get(output)!, list, p.Get(overwrite), ConsoleProgress.Instance, CliContext.Cancellation);
            FuseDataOptions.Finish(report, p.Get(output)!);
            return 0;
        }));
        return cmd;
    }
}
