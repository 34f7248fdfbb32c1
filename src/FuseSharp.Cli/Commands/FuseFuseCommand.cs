using System.CommandLine;
using System.Globalization;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse targets</c>: MinCE / AvgCE fused target distributions per row (spec §6), the "fuse" step.</summary>
internal static class FuseFuseCommand
{
    public static Command Create()
    {
        var data = new FuseDataOptions();
        var output = new Option<string>("--out") { Description = "Output fused store folder.", Required = true };
        var rule = new Option<string>("--rule") { Description = "minCE (the candidate with the lowest CE; default) or avgCE (softmax(exp(-CE)) weighted sum).", DefaultValueFactory = _ => "minCE" };
        var granularity = new Option<string>("--granularity") { Description = "sequence (one choice per row, as the reference; default) or token (per position, an extension).", DefaultValueFactory = _ => "sequence" };
        var temperature = new Option<float>("--temperature") { Description = "Teacher temperature T: softmax(logits / T) (default 1).", DefaultValueFactory = _ => 1f };
        var noTarget = new Option<bool>("--no-target") { Description = "Leave the target's own distribution out of the candidates (default: it competes, as distill_with_ref_model)." };
        var sources = new Option<string?>("--sources") { Description = "Comma-separated sources to use (0-based); default all." };
        var precision = new Option<string>("--precision") { Description = "bf16 (rewards, weights and distributions rounded as the reference trainer; default) or fp32.", DefaultValueFactory = _ => "bf16" };
        var shard = new Option<string?>("--shard") { Description = "I/N: this process's slice of the rows (auto[/N]: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing store of another configuration." };
        // Named "targets": System.CommandLine rejects a subcommand named like its parent ("fuse fuse").
        var cmd = new Command("targets", "Fuse the candidates' distributions into one teacher distribution per position (MinCE or AvgCE).");
        data.AddTo(cmd);
        foreach (var o in new Option[] { output, rule, granularity, temperature, noTarget, sources, precision, shard, overwrite }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var options = new FusionOptions
            {
                Rule = p.Get(rule)!.ToLowerInvariant() switch
                {
                    "mince" => FusionRule.MinCe,
                    "avgce" => FusionRule.AvgCe,
                    var x => throw new FuseSharpException($"--rule must be minCE or avgCE, got '{x}'"),
                },
                Granularity = ParseGranularity(p.Get(granularity)!, "--granularity"),
                Temperature = p.Get(temperature),
                WithTarget = !p.Get(noTarget),
                Sources = p.Get(sources) is { } s ? ParseInts(s, "--sources") : null,
                Precision = p.Get(precision) switch
                {
                    "bf16" => FusionPrecision.Bf16,
                    "fp32" => FusionPrecision.Fp32,
                    var x => throw new FuseSharpException($"--precision must be bf16 or fp32, got '{x}'"),
                },
            };
            var report = FuseStage.Run(data.Open(p), p.Get(output)!, options, ShardSpec.Parse(p.Get(shard)), p.Get(overwrite), ConsoleProgress.Instance, CliContext.Cancellation);
            FuseDataOptions.Finish(report, p.Get(output)!);
            return 0;
        }));
        return cmd;
    }

    internal static MetricGranularity ParseGranularity(string value, string option) => value switch
    {
        "sequence" => MetricGranularity.Sequence,
        "token" => MetricGranularity.Token,
        _ => throw new FuseSharpException($"{option} must be sequence or token, got '{value}'"),
    };

    internal static List<int> ParseInts(string value, string option) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : throw new FuseSharpException($"{option}: '{x}' is not a non-negative integer"))
            .ToList();
}
