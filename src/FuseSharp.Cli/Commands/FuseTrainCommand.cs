using System.CommandLine;
using System.Globalization;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Training;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp fuse train</c>: continue training the target on fused data with <c>λ·CLM + (1−λ)·fusion CE</c>
/// (spec §7.1), with the papers' settings as presets (spec §7.3) and the trainer's checkpoints and exact resume.
/// </summary>
internal static class FuseTrainCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The target model folder to continue training.", Required = true };
        var fused = new Option<string?>("--data") { Description = "A fused store (the output of `fuse targets`)." };
        var data = new FuseDataOptions();
        var output = new Option<string>("--out") { Description = "Output folder: checkpoints, log.jsonl, loss.svg and the final model.", Required = true };
        var preset = new Option<string>("--preset") { Description = "fusellm (lr 1e-5, cosine, warmup 0.008, wd 0.1, betas 0.9,0.95, 1 epoch, fusion loss on every position; default) or fusechat (lr 5e-6, cosine, warmup 0.03, wd 0, 3 epochs, response positions only).", DefaultValueFactory = _ => "fusellm" };
        var lambda = new Option<double?>("--lm-loss-weight") { Description = "λ in λ·CLM + (1−λ)·fusion (default 0.9; 1 = causal-LM only)." };
        var clmOnly = new Option<bool>("--clm-only") { Description = "Train on the same rows without the teacher (the CLM baseline; implies λ = 1)." };
        var loss = new Option<string?>("--fusion-loss") { Description = "ce (default) or kl." };
        var mask = new Option<string?>("--fusion-mask") { Description = "all (every real position, FuseLLM) or supervised (positions predicting a label, FuseChat); default from --preset." };
        var rule = new Option<string>("--rule") { Description = "With --dataset/--target: minCE (default) or avgCE, fused while loading.", DefaultValueFactory = _ => "minCE" };
        var temperature = new Option<float>("--temperature") { Description = "With --dataset/--target: teacher temperature T (default 1).", DefaultValueFactory = _ => 1f };
        var noTarget = new Option<bool>("--no-target") { Description = "With --dataset/--target: leave the target's own distribution out of the candidates." };
        var sources = new Option<string?>("--sources") { Description = "With --dataset/--target: comma-separated sources to use (0-based); default all." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate." };
        var epochs = new Option<double?>("--epochs") { Description = "Passes over the data." };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps (instead of --epochs)." };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per micro-batch (default 8).", DefaultValueFactory = _ => 8 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step (default 1).", DefaultValueFactory = _ => 1 };
        var schedule = new Option<string?>("--schedule") { Description = "cosine, linear or constant." };
        var warmup = new Option<double?>("--warmup-ratio") { Description = "Warmup as a fraction of the steps." };
        var decay = new Option<double?>("--weight-decay") { Description = "AdamW weight decay." };
        var betas = new Option<string?>("--adam-betas") { Description = "β1,β2 (e.g. 0.9,0.95)." };
        var clip = new Option<double?>("--max-grad-norm") { Description = "Global-norm clipping (0: off; default 1)." };
        var seed = new Option<long>("--seed") { Description = "Data order seed (default 42).", DefaultValueFactory = _ => 42 };
        var save = new Option<long>("--save-steps") { Description = "A checkpoint every N steps (0: only at the end; default 500).", DefaultValueFactory = _ => 500 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its newest checkpoint." };
        var cmd = new Command("train", "Continue training the target on fused data: λ·CLM + (1−λ)·CE(fused teacher).");
        cmd.Options.Add(model);
        cmd.Options.Add(fused);
        data.AddTo(cmd);
        foreach (var o in new Option[] { output, preset, lambda, clmOnly, loss, mask, rule, temperature, noTarget, sources, lr, epochs, steps, batch, accum, schedule, warmup, decay, betas, clip, seed, save, resume })
            cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var kind = p.Get(preset) switch
            {
                "fusellm" => FusionRecipeKind.FuseLlm,
                "fusechat" => FusionRecipeKind.FuseChat,
                var x => throw new FuseSharpException($"--preset must be fusellm or fusechat, got '{x}'"),
            };
            var o = TrainStage.Defaults(kind);
            var adam = o.Adam;
            if (p.Get(betas) is { } b)
            {
                var (b1, b2) = TrainCommand.ParseBetas(b);
                adam = adam with { Beta1 = b1, Beta2 = b2 };
            }
            if (p.Get(decay) is { } wd) adam = adam with { WeightDecay = wd };
            var objective = o.Objective;
            if (p.Get(clmOnly)) objective = objective with { LmLossWeight = 1 };
            if (p.Get(lambda) is { } l) objective = objective with { LmLossWeight = l };
            if (p.Get(loss) is { } ls) objective = objective with { FusionLoss = ls switch { "ce" => FusionLossKind.CrossEntropy, "kl" => FusionLossKind.KlDivergence, _ => throw new FuseSharpException($"--fusion-loss must be ce or kl, got '{ls}'") } };
            if (p.Get(mask) is { } m) objective = objective with { FusionMask = m switch { "all" => FusionLossMask.AllTokens, "supervised" => FusionLossMask.SupervisedTokens, _ => throw new FuseSharpException($"--fusion-mask must be all or supervised, got '{m}'") } };
            o = o with
            {
                LearningRate = p.Get(lr) ?? o.LearningRate,
                Epochs = p.Get(steps) is not null ? null : p.Get(epochs) ?? o.Epochs,
                MaxSteps = p.Get(steps),
                BatchSize = p.Get(batch),
                GradientAccumulation = p.Get(accum),
                Schedule = p.Get(schedule) is { } s ? ParseSchedule(s) : o.Schedule,
                WarmupRatio = p.Get(warmup) ?? o.WarmupRatio,
                Adam = adam,
                MaxGradNorm = p.Get(clip) ?? o.MaxGradNorm,
                Seed = p.Get(seed),
                SaveSteps = p.Get(save),
                Objective = objective,
            };
            var progress = ConsoleProgress.Instance;
            FusionTrainingDataset rows;
            if (p.Get(fused) is { } f)
            {
                if (p.Get(data.Dataset) is not null || p.Get(data.Target) is not null) throw new FuseSharpException("give either --data (a fused store) or --dataset/--target, not both");
                rows = FusionTrainingDataset.FromFusedStore(StoreReader.Open(f), progress, CliContext.Cancellation);
            }
            else
            {
                var source = data.Open(p);
                rows = p.Get(clmOnly)
                    ? FusionTrainingDataset.LanguageModeling(source, CliContext.Cancellation)
                    : FusionTrainingDataset.Fuse(source, new FusionOptions
                    {
                        Rule = p.Get(rule)!.ToLowerInvariant() switch { "mince" => FusionRule.MinCe, "avgce" => FusionRule.AvgCe, var x => throw new FuseSharpException($"--rule must be minCE or avgCE, got '{x}'") },
                        Temperature = p.Get(temperature),
                        WithTarget = !p.Get(noTarget),
                        Sources = p.Get(sources) is { } ss ? FuseFuseCommand.ParseInts(ss, "--sources") : null,
                    }, progress, CliContext.Cancellation);
            }
            if (p.Get(clmOnly) && rows.HasTeacher) rows = rows.WithoutTeacher();
            var result = TrainStage.Run(p.Get(model)!, rows, p.Get(output)!, o, TrainableTransformer.Loader(), p.Get(resume), progress, cancel: CliContext.Cancellation);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fuse train: {result.Steps} steps, final loss {result.FinalLoss:0.####} -> {result.OutputDirectory}"));
            return 0;
        }));
        return cmd;
    }

    internal static ScheduleKind ParseSchedule(string s) => s switch
    {
        "cosine" => ScheduleKind.Cosine,
        "linear" => ScheduleKind.Linear,
        "constant" => ScheduleKind.Constant,
        _ => throw new FuseSharpException($"--schedule must be cosine, linear or constant, got '{s}'"),
    };
}
