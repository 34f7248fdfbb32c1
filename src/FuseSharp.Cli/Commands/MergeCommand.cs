using System.CommandLine;
using FuseSharp.Evaluation;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp merge CONFIG.yml OUT_DIR [--seed N] [--out-shard-size 5GB] [--no-copy-tokenizer] [--threads N]
/// [--allow-crimes] [--dry-run]</c>: runs a mergekit-compatible merge config.
/// </summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var config = new Argument<string>("CONFIG") { Description = "A mergekit YAML merge configuration." };
        var output = new Argument<string?>("OUT_DIR") { Description = "Folder for the merged model (created; written atomically).", Arity = ArgumentArity.ZeroOrOne };
        var seed = new Option<long>("--seed", "--random-seed") { Description = "Seed of the random methods (DARE, DELLA); results are identical for any --threads." };
        var shard = new Option<string>("--out-shard-size") { Description = "Largest output shard (e.g. 5GB, 500MB, 2GiB).", DefaultValueFactory = _ => "5GB" };
        var noTokenizer = new Option<bool>("--no-copy-tokenizer") { Description = "Do not copy the tokenizer into the output." };
        var crimes = new Option<bool>("--allow-crimes") { Description = "Allow models of different architectures." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Validate and print the plan (tensors, bytes to read and write, predicted peak memory) without merging." };
        var listTensors = new Option<bool>("--list-tensors") { Description = "With --dry-run: list every output tensor with its inputs and parameters." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace OUT_DIR if it exists and is not empty." };
        var noCard = new Option<bool>("--no-write-model-card") { Description = "Do not write README.md and fusesharp_config.yml." };
        var cmd = new Command("merge", "Merge models as a mergekit YAML config describes (linear, task_arithmetic, ties, dare_*, breadcrumbs*, della*, slerp, nuslerp, multislerp, karcher, model_stock, nearswap, arcee_fusion, sce, varm, widen, lm_cocktail, passthrough).")
        {
            config, output, seed, shard, noTokenizer, crimes, dryRun, listTensors, overwrite, noCard,
        };
        cmd.SetAction(pr => CliContext.Run(() => Execute(
            pr.GetValue(config)!, pr.GetValue(output),
            new MergeOptions
            {
                Seed = pr.GetValue(seed),
                OutShardBytes = MergeOptions.ParseSize(pr.GetValue(shard) ?? "5GB"),
                CopyTokenizer = !pr.GetValue(noTokenizer),
                AllowCrimes = pr.GetValue(crimes),
                Overwrite = pr.GetValue(overwrite),
                WriteModelCard = !pr.GetValue(noCard),
                ExampleLossScorer = new ExampleLossScorer(),
            },
            pr.GetValue(dryRun), pr.GetValue(listTensors))));
        return cmd;
    }

    private static int Execute(string configPath, string? outDir, MergeOptions options, bool dryRun, bool listTensors)
    {
        if (outDir is null && !dryRun)
            throw new FuseSharpException("missing OUT_DIR", "usage: fusesharp merge CONFIG.yml OUT_DIR (or --dry-run to only plan)");
        var ct = CliContext.Cancellation;
        var config = MergeConfigParser.ParseFile(configPath);
        var progress = ConsoleProgress.Instance;
        using var plan = MergePlanner.Plan(config, options, progress.Message, ct);
        if (dryRun)
        {
            Console.Out.Write(plan.Describe(Parallelism.MaxThreads, listTensors));
            if (outDir is not null && Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any() && !options.Overwrite)
                Console.Error.WriteLine($"note: {outDir} exists and is not empty; a real run needs --overwrite or another folder");
            return 0;
        }
        const int maxNotes = 12;
        foreach (var w in plan.Warnings.Take(maxNotes)) progress.Message($"note: {w}");
        if (plan.Warnings.Count > maxNotes) progress.Message($"note: ... and {plan.Warnings.Count - maxNotes} more (see merge_report.json)");
        progress.Message($"{plan.Tasks.Count} tensors, read {MergePlan.Bytes(plan.BytesToRead)}, write {MergePlan.Bytes(plan.BytesToWrite)}, predicted peak memory {MergePlan.Bytes(plan.PredictedPeakBytes(Parallelism.MaxThreads))}");
        var report = MergeExecutor.Run(plan, outDir!, progress, ct);
        Console.Error.Write(report.Summary());
        return 0;
    }
}
