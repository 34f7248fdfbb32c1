using System.CommandLine;
using System.Globalization;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tokenization;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp train --model DIR --data FILE --out DIR [...]</c>: causal-LM / SFT training of any dense engine
/// architecture with AdamW, warmup schedules, accumulation, clipping, checkpoints every N steps with exact
/// <c>--resume</c>, a JSONL log and SVG loss curve; OUT ends as a loadable model folder with its checkpoints inside.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder to start from (its tokenizer and chat template are used and copied).", Required = true };
        var data = new Option<string>("--data") { Description = "Training data: a text file, JSON lines {\"text\"}, chat {\"conversations\"|\"messages\"} or {\"input_ids\"}.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder: checkpoints, log.jsonl, loss.svg, and the final model.", Required = true };
        var format = new Option<string>("--data-format") { Description = "auto (default), text, jsonl, chat or tokens.", DefaultValueFactory = _ => "auto" };
        var evalData = new Option<string?>("--eval-data") { Description = "Held-out data in the same format (loss at --eval-steps and at the end)." };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps (default: one epoch)." };
        var epochs = new Option<double?>("--epochs") { Description = "Passes over the data (fractional allowed)." };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (default 5e-5).", DefaultValueFactory = _ => 5e-5 };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per micro-batch (default 8).", DefaultValueFactory = _ => 8 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step (default 1).", DefaultValueFactory = _ => 1 };
        var block = new Option<int?>("--block-size") { Description = "Tokens per packed block, longest chat/tokens sequence (default: min(max positions, 1024))." };
        var schedule = new Option<string>("--schedule") { Description = "linear (default), cosine or constant.", DefaultValueFactory = _ => "linear" };
        var warmupRatio = new Option<double>("--warmup-ratio") { Description = "Warmup as a fraction of the steps (default 0)." };
        var warmupSteps = new Option<long?>("--warmup-steps") { Description = "Warmup in steps (wins over --warmup-ratio)." };
        var weightDecay = new Option<double>("--weight-decay") { Description = "Decoupled weight decay (default 0; not on biases and norms unless --decay-all)." };
        var decayAll = new Option<bool>("--decay-all") { Description = "Weight decay on every parameter, as plain torch.optim.AdamW." };
        var betas = new Option<string>("--adam-betas") { Description = "AdamW betas (default 0.9,0.999).", DefaultValueFactory = _ => "0.9,0.999" };
        var adamEps = new Option<double>("--adam-eps") { Description = "AdamW epsilon (default 1e-8).", DefaultValueFactory = _ => 1e-8 };
        var clip = new Option<double>("--max-grad-norm") { Description = "Global gradient-norm clipping (default 1; 0 disables).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long>("--seed") { Description = "Seed of the data order (default 42).", DefaultValueFactory = _ => 42 };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "Keep the data in file order." };
        var saveSteps = new Option<long>("--save-steps") { Description = "A checkpoint every N steps (default 500; 0: only at the end).", DefaultValueFactory = _ => 500 };
        var saveLimit = new Option<int?>("--save-total-limit") { Description = "Keep at most N checkpoints (oldest deleted)." };
        var evalSteps = new Option<long>("--eval-steps") { Description = "Held-out loss every N steps (default 0: only at the end)." };
        var saveDtype = new Option<string>("--save-dtype") { Description = "Weights of the final model: float32 (default), bfloat16 or float16.", DefaultValueFactory = _ => "float32" };
        var lmWeight = new Option<double>("--lm-loss-weight") { Description = "λ of λ·CLM + (1−λ)·fusion CE (default 1; only data with teacher distributions has a fusion part).", DefaultValueFactory = _ => 1.0 };
        var checkpointing = new Option<bool>("--gradient-checkpointing") { Description = "Recompute each block's activations in the backward (less memory, about a third more compute)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its newest checkpoint (same data and options)." };
        var cmd = new Command("train", "Train a model (causal LM or chat SFT) with AdamW; checkpoints resume exactly.")
        {
            model, data, output, format, evalData, steps, epochs, lr, batch, accum, block, schedule, warmupRatio, warmupSteps, weightDecay, decayAll,
            betas, adamEps, clip, seed, noShuffle, saveSteps, saveLimit, evalSteps, saveDtype, lmWeight, checkpointing, resume,
        };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var modelDir = pr.GetValue(model)!;
            using var folder = ModelFolder.Open(modelDir);
            var architecture = ArchitectureRegistry.Resolve(folder.Config!);
            var spec = architecture.Resolve(folder.Config!);
            TrainableTransformer.RequireTrainable(spec, modelDir);

            var dataFormat = ParseFormat(pr.GetValue(format)!);
            var dataPath = pr.GetValue(data)!;
            var evalPath = pr.GetValue(evalData);
            var formats = new[] { dataPath, evalPath }.OfType<string>().Select(p => dataFormat == DataFormat.Auto && File.Exists(p) ? TrainingData.Detect(p) : dataFormat).ToList();
            int blockSize = pr.GetValue(block) ?? Math.Min(spec.MaxPositions, 1024);
            if (blockSize > spec.MaxPositions)
                throw new FuseSharpException($"--block-size {blockSize} is above the model's {spec.MaxPositions} positions (max_position_embeddings)", $"use --block-size {spec.MaxPositions} or less");
            ITokenizer? tokenizer = formats.All(f => f == DataFormat.Tokens) ? null : EngineInputs.LoadTokenizer(modelDir);
            IChatRenderer? chat = formats.Contains(DataFormat.Chat) ? TemplateChatRenderer.ForModel(modelDir) : null;
            var dataOptions = new DataOptions(dataFormat, blockSize, spec.VocabSize);
            var train = TrainingData.Load(dataPath, dataOptions, tokenizer, chat, ConsoleProgress.Instance, CliContext.Cancellation);
            var held = evalPath is null ? null : TrainingData.Load(evalPath, dataOptions, tokenizer, chat, ConsoleProgress.Instance, CliContext.Cancellation);

            int pad = tokenizer?.PadTokenId ?? tokenizer?.EosTokenId ?? spec.PadTokenId ?? 0;
            if (pad < 0 || pad >= spec.VocabSize) pad = 0;
            var options = new TrainingOptions
            {
                MaxSteps = pr.GetValue(steps),
                Epochs = pr.GetValue(epochs),
                LearningRate = pr.GetValue(lr),
                BatchSize = pr.GetValue(batch),
                GradientAccumulation = pr.GetValue(accum),
                Schedule = ParseSchedule(pr.GetValue(schedule)!),
                WarmupRatio = pr.GetValue(warmupRatio),
                WarmupSteps = pr.GetValue(warmupSteps),
                Adam = ParseAdam(pr.GetValue(betas)!, pr.GetValue(adamEps), pr.GetValue(weightDecay)),
                DecayPolicy = pr.GetValue(decayAll) ? WeightDecayPolicy.All : WeightDecayPolicy.Default,
                MaxGradNorm = pr.GetValue(clip),
                Seed = pr.GetValue(seed),
                Shuffle = !pr.GetValue(noShuffle),
                SaveSteps = pr.GetValue(saveSteps),
                SaveTotalLimit = pr.GetValue(saveLimit),
                EvalSteps = pr.GetValue(evalSteps),
                Objective = new ObjectiveOptions(LmLossWeight: pr.GetValue(lmWeight)),
                PadTokenId = pad,
                SaveDType = ParseDtype(pr.GetValue(saveDtype)!),
            };
            var modelOptions = new TrainableTransformerOptions { GradientCheckpointing = pr.GetValue(checkpointing) };
            var trainer = new Trainer(options, train, pr.GetValue(output)!, ConsoleProgress.Instance, held);
            var inv = CultureInfo.InvariantCulture;
            Console.Error.WriteLine(string.Create(inv, $"training {spec.ModelType} ({Path.GetFileName(Path.GetFullPath(modelDir))}) on {train.Count:N0} sequences of up to {train.MaxLength} tokens, {options.TotalSteps(train.Count):N0} steps"));
            var result = trainer.Run(modelDir, TrainableTransformer.Loader(modelOptions), pr.GetValue(resume), CliContext.Cancellation);
            Console.Out.WriteLine(string.Create(inv, $"steps          {result.Steps:N0}{(result.ResumedFrom > 0 ? $" (resumed at {result.ResumedFrom:N0})" : "")}"));
            Console.Out.WriteLine(string.Create(inv, $"final loss     {result.FinalLoss:0.0000}"));
            if (result.EvalLoss is { } e) Console.Out.WriteLine(string.Create(inv, $"held-out loss  {e.Total:0.0000}"));
            Console.Out.WriteLine(string.Create(inv, $"time           {result.Elapsed.TotalSeconds:0.0} s"));
            Console.Out.WriteLine($"model          {result.OutputDirectory}");
            return 0;
        }));
        return cmd;
    }

    private static DataFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "auto" => DataFormat.Auto,
        "text" => DataFormat.Text,
        "jsonl" => DataFormat.Jsonl,
        "chat" => DataFormat.Chat,
        "tokens" => DataFormat.Tokens,
        _ => throw new FuseSharpException($"--data-format '{s}' is not one of auto, text, jsonl, chat, tokens"),
    };

    private static ScheduleKind ParseSchedule(string s) => s.ToLowerInvariant() switch
    {
        "linear" => ScheduleKind.Linear,
        "cosine" => ScheduleKind.Cosine,
        "constant" => ScheduleKind.Constant,
        _ => throw new FuseSharpException($"--schedule '{s}' is not one of linear, cosine, constant"),
    };

    private static DType ParseDtype(string s) => s.ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" => DType.F32,
        "bfloat16" or "bf16" => DType.BF16,
        "float16" or "f16" or "fp16" => DType.F16,
        _ => throw new FuseSharpException($"--save-dtype '{s}' is not one of float32, bfloat16, float16"),
    };

    private static AdamWOptions ParseAdam(string betas, double eps, double weightDecay)
    {
        var (b1, b2) = ParseBetas(betas);
        return new AdamWOptions(b1, b2, eps, weightDecay);
    }

    /// <summary>The <c>--adam-betas</c> value "β1,β2" (also used by <c>fuse train</c>).</summary>
    internal static (double Beta1, double Beta2) ParseBetas(string betas)
    {
        var parts = betas.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var b1)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var b2))
            throw new FuseSharpException($"--adam-betas '{betas}': expected two numbers, e.g. 0.9,0.95");
        return (b1, b2);
    }
}
