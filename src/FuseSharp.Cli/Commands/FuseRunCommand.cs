using System.CommandLine;
using FuseSharp.Fusion.Recipes;
using FuseSharp.Training;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp fuse run RECIPE.yml OUT</c>: a whole FuseLLM or FuseChat recipe from one YAML file, stage by stage,
/// resumable (a rerun continues where a killed run stopped), ending with the held-out bits-per-byte table.
/// </summary>
internal static class FuseRunCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("RECIPE") { Description = "The recipe (YAML): kind, target, sources, corpus, and optional represent/align/pack/fusion/train/merge/evaluate sections." };
        var output = new Argument<string>("OUT") { Description = "The run folder; running again on it resumes." };
        var until = new Option<string?>("--until") { Description = "Stop after this stage (see --list)." };
        var list = new Option<bool>("--list") { Description = "Print the stages and which are done, then exit." };
        var summarize = new Option<string[]>("--summarize") { Description = "Instead of running: mean ± std over finished runs (OUT and these folders), e.g. seeds.", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("run", "Run a whole fusion recipe (FuseLLM or FuseChat) from one YAML file, resumably, and print the before/after table.")
            { recipe, output, until, list, summarize };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            if (pr.GetValue(summarize) is { Length: > 0 } others)
            {
                var runs = others.Prepend(pr.GetValue(output)!).Select(d => Path.Combine(d, RecipeResults.FileName))
                    .Select(f => File.Exists(f) ? RecipeResults.Load(f) : throw new FuseSharpException($"{f}: no results (the run has not finished its evaluate stage)")).ToList();
                Console.Out.Write(RecipeResults.SummaryTable(runs));
                return 0;
            }
            var r = FusionRecipe.Load(pr.GetValue(recipe)!);
            var runner = new RecipeRunner(r, pr.GetValue(output)!, TrainableTransformer.Loader(), ConsoleProgress.Instance);
            if (pr.GetValue(list))
            {
                foreach (var s in runner.Stages) Console.Out.WriteLine($"{(runner.IsDone(s.Name) ? "done" : "todo"),-5} {s.Name}");
                return 0;
            }
            var results = runner.Run(pr.GetValue(until), CliContext.Cancellation);
            if (results is not null) Console.Out.Write(results.Table());
            Console.Error.WriteLine($"fuse run: {(pr.GetValue(until) is { } u ? $"stopped after {u}" : "done")} -> {runner.Out}");
            return 0;
        }));
        return cmd;
    }
}
