using System.Diagnostics;
using System.Globalization;
using FuseSharp.Diagnostics;
using FuseSharp.Training.Data;

namespace FuseSharp.Training;

/// <summary>How a run ended.</summary>
/// <param name="Steps">Optimizer steps taken in total (earlier sessions included).</param>
/// <param name="FinalLoss">Loss of the last step.</param>
/// <param name="EvalLoss">Last held-out loss, when evaluation data was given.</param>
/// <param name="OutputDirectory">The model folder written at the end.</param>
/// <param name="LastCheckpoint">The final checkpoint.</param>
/// <param name="Elapsed">Wall time of this session.</param>
/// <param name="ResumedFrom">Step this session started from (0 for a fresh run).</param>
public sealed record TrainingResult(long Steps, double FinalLoss, LossParts? EvalLoss, string OutputDirectory, string? LastCheckpoint, TimeSpan Elapsed, long ResumedFrom);

/// <summary>
/// The training loop: micro-batches drawn in the (seed, epoch) order, forward/backward with the λ-mixture
/// objective, global-norm clipping, AdamW with a warmup schedule, a JSONL log line per step, checkpoints every N
/// steps and at the end, and the final model folder. A run resumed from a checkpoint continues the exact
/// trajectory of an uninterrupted one: the weights and moments are restored bit for bit, and the data order,
/// schedule and every reduction are functions of the step alone.
/// <para>A NaN or infinite loss or gradient norm stops the run before the optimizer step, naming the step; the
/// last good checkpoint stays as it is.</para>
/// </summary>
public sealed class Trainer
{
    private readonly TrainingOptions _options;
    private readonly ITrainingDataset _data;
    private readonly ITrainingDataset? _evalData;
    private readonly IProgressReporter _progress;

    public Trainer(TrainingOptions options, ITrainingDataset data, string outputDirectory, IProgressReporter? progress = null, ITrainingDataset? evalData = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        options.Validate();
        if (data.Count == 0) throw new TrainingException("the training data has no sequences", "check --data");
        _options = options;
        _data = data;
        _evalData = evalData is { Count: > 0 } ? evalData : null;
        _progress = progress ?? NullProgress.Instance;
        OutputDirectory = Path.GetFullPath(outputDirectory);
        Checkpoints = new CheckpointManager(OutputDirectory, options.SaveTotalLimit);
    }

    public string OutputDirectory { get; }

    public CheckpointManager Checkpoints { get; }

    /// <summary>
    /// Trains. A fresh run loads the model from <paramref name="modelFolder"/> and needs an empty (or missing) output
    /// folder; with <paramref name="resume"/> the model, optimizer and position come from the newest checkpoint.
    /// </summary>
    /// <param name="modelFolder">The model to start from (its tokenizer and generation files are copied into every saved folder).</param>
    /// <param name="loadModel">Loads a trainable model from a Hugging Face folder (the engine's loader).</param>
    /// <param name="resume">Continue the run in the output folder.</param>
    /// <param name="cancellation">Stops between micro-batches; checkpoints already written stay.</param>
    /// <exception cref="TrainingException">Bad options or data for this model, a resume that does not match, a failed checkpoint.</exception>
    /// <exception cref="TrainingDivergedException">The loss or gradient became NaN or infinite.</exception>
    public TrainingResult Run(string modelFolder, Func<string, ITrainableModel> loadModel, bool resume = false, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(loadModel);
        var sessionClock = Stopwatch.StartNew();
        long total = _options.TotalSteps(_data.Count);
        var fingerprint = _options.Fingerprint(total, _data.Count, _data.Description);
        TrainerState? state = null;
        string source = modelFolder;
        if (resume)
        {
            Checkpoints.RemoveIncomplete();
            var latest = Checkpoints.Latest() ?? throw new TrainingException($"--resume: {OutputDirectory} has no checkpoint to resume from",
                "start the run without --resume (a run saves a checkpoint every --save-steps steps)");
            state = TrainerState.Load(Path.Combine(latest.Path, TrainerState.FileName));
            CheckFingerprint(state, fingerprint, latest.Path);
            source = latest.Path;
        }
        else
        {
            if (Directory.Exists(OutputDirectory) && Directory.EnumerateFileSystemEntries(OutputDirectory).Any())
                throw new TrainingException($"{OutputDirectory}: the output folder exists and is not empty",
                    Checkpoints.Latest() is not null ? "pass --resume to continue the run it holds, or choose another folder" : "choose another folder, or delete it");
            Directory.CreateDirectory(OutputDirectory);
        }

        using var model = loadModel(source);
        Validate(model);
        using var optimizer = new AdamW(model.Parameters, _options.Adam, _options.DecayPolicy);
        long step = 0, examplesSeen = 0, tokensSeen = 0;
        double lastLoss = double.NaN;
        if (state is not null)
        {
            CheckpointManager.LoadOptimizer(source, optimizer);
            if (optimizer.StepCount != state.GlobalStep)
                throw new TrainingException($"{source}: optimizer step {optimizer.StepCount} differs from trainer step {state.GlobalStep}", "the checkpoint is damaged; resume from an earlier one");
            (step, examplesSeen, tokensSeen, lastLoss) = (state.GlobalStep, state.ExamplesSeen, state.TokensSeen, state.LastLoss);
            _progress.Message($"resuming from {Path.GetFileName(source)} (step {step} of {total})");
        }
        var schedule = new LearningRateSchedule(_options.Schedule, _options.LearningRate, LearningRateSchedule.WarmupFrom(total, _options.WarmupRatio, _options.WarmupSteps), total);
        var objective = new TrainingObjective(_options.Objective);
        var order = new DataOrder(_data.Count, _options.Seed, _options.Shuffle);
        var grads = model.Gradients;
        grads.Clear();
        string? lastCheckpoint = state is null ? null : source;
        LossParts? evalLoss = null;
        long resumedFrom = step;
        bool hasTeacher = _data.Count > 0 && _data[0].Targets is not null;

        using var log = TrainingLog.Open(OutputDirectory, step);
        using (var task = _progress.Start("training", total, ProgressUnit.Steps))
        {
            task.SetCompleted(step);
            while (step < total)
            {
                cancellation.ThrowIfCancellationRequested();
                var stepClock = Stopwatch.StartNew();
                var micro = new List<MicroBatch>(_options.GradientAccumulation);
                for (int a = 0; a < _options.GradientAccumulation; a++)
                {
                    var examples = new TrainingExample[_options.BatchSize];
                    for (int i = 0; i < examples.Length; i++) examples[i] = _data[order[examplesSeen++]];
                    micro.Add(MicroBatch.Collate(examples, _options.PadTokenId));
                }
                var losses = objective.Begin(micro);
                for (int a = 0; a < micro.Count; a++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    model.Run(micro[a], losses[a], backward: true);
                }
                var parts = objective.Summarize(losses);
                if (!parts.IsFinite)
                    throw new TrainingDivergedException(step + 1, $"the loss is {Describe(parts.Total)} (causal-LM {Describe(parts.Clm)}, fusion {Describe(parts.Fusion)})", lastCheckpoint);
                double norm = GradientClipping.ClipByGlobalNorm(grads, _options.MaxGradNorm);
                if (!double.IsFinite(norm))
                    throw new TrainingDivergedException(step + 1, $"the gradient norm is {Describe(norm)} (loss {parts.Total:0.####})", lastCheckpoint);
                double lr = schedule.LearningRate(step);
                optimizer.Step(grads, lr);
                grads.Clear();
                step++;
                long tokens = micro.Sum(m => m.TokenCount);
                tokensSeen += tokens;
                lastLoss = parts.Total;
                double seconds = stepClock.Elapsed.TotalSeconds;
                log.Append(new StepRecord(step, (double)examplesSeen / _data.Count, parts.Total, parts.Clm, hasTeacher ? parts.Fusion : null, lr, norm,
                    tokens, seconds > 0 ? tokens / seconds : 0, sessionClock.Elapsed.TotalSeconds));
                task.Advance();

                if (_evalData is not null && _options.EvalSteps > 0 && step % _options.EvalSteps == 0 && step < total)
                {
                    evalLoss = Evaluate(model, _evalData, objective, _options.BatchSize, _options.PadTokenId, cancellation);
                    log.AppendEval(step, evalLoss.Value.Total);
                    _progress.Message(string.Create(CultureInfo.InvariantCulture, $"step {step}: held-out loss {evalLoss.Value.Total:0.####}"));
                }
                if ((_options.SaveSteps > 0 && step % _options.SaveSteps == 0) || step == total)
                {
                    var st = new TrainerState { GlobalStep = step, TotalSteps = total, ExamplesSeen = examplesSeen, TokensSeen = tokensSeen, LastLoss = lastLoss, Fingerprint = fingerprint };
                    if (step == total && _evalData is not null)
                    {
                        evalLoss = Evaluate(model, _evalData, objective, _options.BatchSize, _options.PadTokenId, cancellation);
                        log.AppendEval(step, evalLoss.Value.Total);
                    }
                    lastCheckpoint = Checkpoints.Save(model, optimizer, st, source);
                    LossCurve.Write(Path.Combine(OutputDirectory, LossCurve.FileName), log.Records);
                    _progress.Message($"saved {Path.GetFileName(lastCheckpoint)}");
                }
            }
        }
        if (lastCheckpoint is null && state is not null) lastCheckpoint = source;
        // The run's result: a loadable model folder in OUT itself (weights in the requested dtype).
        try
        {
            ModelSaver.Save(model, OutputDirectory, _options.SaveDType, source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FuseSharpException)
        {
            throw new TrainingException($"the final model could not be written to {OutputDirectory} ({e.Message})"
                + (lastCheckpoint is null ? "" : $"; the trained weights are in {lastCheckpoint}"),
                "free disk space, then run again with --resume: it only writes the final model", e);
        }
        LossCurve.Write(Path.Combine(OutputDirectory, LossCurve.FileName), log.Records);
        return new TrainingResult(step, lastLoss, evalLoss, OutputDirectory, lastCheckpoint, sessionClock.Elapsed, resumedFrom);
    }

    /// <summary>The objective over every sequence of <paramref name="data"/>, in order, without gradients (token mean).</summary>
    public static LossParts Evaluate(ITrainableModel model, ITrainingDataset data, TrainingObjective objective, int batchSize, int padTokenId, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(objective);
        var all = new List<MicroBatchLoss>();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var examples = Enumerable.Range(start, Math.Min(batchSize, data.Count - start)).Select(i => data[i]).ToList();
            var loss = objective.Begin([MicroBatch.Collate(examples, padTokenId)])[0];
            model.Run(loss.Batch, loss, backward: false);
            all.Add(loss);
        }
        var tokenMean = new TrainingObjective(objective.Options with { Reduction = LossReduction.TokenMean });
        return tokenMean.Summarize(all);
    }

    private void Validate(ITrainableModel model)
    {
        if (_data.MaxLength > model.MaxPositions)
            throw new TrainingException($"sequences of {_data.MaxLength} tokens are longer than the model's {model.MaxPositions} positions",
                $"lower --block-size to at most {model.MaxPositions}");
        if (_options.PadTokenId >= model.VocabSize)
            throw new TrainingException($"pad token id {_options.PadTokenId} is outside the model's vocabulary of {model.VocabSize}");
        if (!model.Parameters.HasSameLayout(model.Gradients))
            throw new TrainingException("the model's gradient arena does not match its parameters (an engine bug)");
    }

    private static void CheckFingerprint(TrainerState state, System.Text.Json.Nodes.JsonObject now, string checkpoint)
    {
        var diffs = new List<string>();
        foreach (var (key, value) in now)
        {
            var before = state.Fingerprint[key]?.ToJsonString();
            var after = value?.ToJsonString();
            if (before != after) diffs.Add($"{key}: {before ?? "(none)"} then, {after ?? "(none)"} now");
        }
        if (diffs.Count > 0)
            throw new TrainingException($"--resume: the options or data differ from the run in {checkpoint} ({string.Join("; ", diffs)})",
                "resume with the same data and options as the interrupted run; to train further with other settings, start a new run from the checkpoint folder as --model");
    }

    private static string Describe(double v) => double.IsNaN(v) ? "NaN" : double.IsInfinity(v) ? (v > 0 ? "+inf" : "-inf") : v.ToString("0.####", CultureInfo.InvariantCulture);
}
