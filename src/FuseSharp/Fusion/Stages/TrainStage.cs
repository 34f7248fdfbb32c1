using FuseSharp.Diagnostics;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Fusion.Stages;

/// <summary>Which paper's training setup (spec fusion.md §7.3, §10.1).</summary>
public enum FusionRecipeKind
{
    /// <summary>FuseLLM: packed plain-text blocks, fusion loss on every real position.</summary>
    FuseLlm,

    /// <summary>FuseChat: one dialogue per row, both losses on response positions only.</summary>
    FuseChat,
}

/// <summary>
/// <c>fuse train</c>: continual training of the target on its fusion data with
/// <c>L = λ·L_CLM + (1 − λ)·L_F</c> (spec §7.1) through the <see cref="Trainer"/> (schedules, checkpoints, exact
/// resume). The teacher is the fused distribution of each row (<see cref="FusionTrainingDataset"/>); the masks are
/// FuseLLM's (every real position) or FuseChat's (positions predicting a response token).
/// </summary>
public static class TrainStage
{
    /// <summary>
    /// The papers' settings (spec §7.3): FuseLLM lr 1e-5, cosine, warmup 0.008, weight decay 0.1, Adam β (0.9, 0.95),
    /// one epoch, λ = 0.9, fusion CE on every real position; FuseChat lr 5e-6, cosine, warmup 0.03, no weight decay,
    /// three epochs, λ = 0.9, fusion CE on supervised positions. Batch sizes are the caller's (the papers' 128
    /// sequences per step do not fit a CPU run). FuseLLM's DeepSpeed config most likely overrode the schedule with
    /// linear warmup/decay and Adam β2 with 0.999 (spec §7.3 caveat); pass those explicitly to follow it.
    /// </summary>
    public static TrainingOptions Defaults(FusionRecipeKind kind) => kind switch
    {
        FusionRecipeKind.FuseLlm => new TrainingOptions
        {
            LearningRate = 1e-5,
            Schedule = ScheduleKind.Cosine,
            WarmupRatio = 0.008,
            Adam = new AdamWOptions(0.9, 0.95, 1e-8, 0.1),
            Epochs = 1,
            MaxGradNorm = 1.0,
            Objective = new ObjectiveOptions(0.9, FusionLossKind.CrossEntropy, FusionLossMask.AllTokens),
        },
        FusionRecipeKind.FuseChat => new TrainingOptions
        {
            LearningRate = 5e-6,
            Schedule = ScheduleKind.Cosine,
            WarmupRatio = 0.03,
            Adam = new AdamWOptions(0.9, 0.999, 1e-8, 0.0),
            Epochs = 3,
            MaxGradNorm = 1.0,
            Objective = new ObjectiveOptions(0.9, FusionLossKind.CrossEntropy, FusionLossMask.SupervisedTokens),
        },
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Trains <paramref name="modelFolder"/> on <paramref name="data"/> into <paramref name="outFolder"/>.</summary>
    /// <param name="modelFolder">The target model (a Hugging Face folder).</param>
    /// <param name="data">The fusion rows (with teacher) or the same rows without (causal-LM baseline, λ must be 1).</param>
    /// <param name="outFolder">Checkpoints, log, loss curve and the final model.</param>
    /// <param name="options">Training options (see <see cref="Defaults"/>).</param>
    /// <param name="loadModel">The training engine's model loader.</param>
    /// <param name="resume">Continue the run in <paramref name="outFolder"/> from its newest checkpoint.</param>
    /// <param name="progress">Progress.</param>
    /// <param name="evalData">Optional held-out rows.</param>
    /// <param name="cancel">Stops between micro-batches; checkpoints stay.</param>
    /// <exception cref="FusionException">Teacher and λ do not go together, or the data does not fit the model's vocabulary.</exception>
    public static TrainingResult Run(string modelFolder, FusionTrainingDataset data, string outFolder, TrainingOptions options, Func<string, ITrainableModel> loadModel,
        bool resume = false, IProgressReporter? progress = null, ITrainingDataset? evalData = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loadModel);
        double lambda = options.Objective.LmLossWeight;
        if (!data.HasTeacher && lambda != 1)
            throw new FusionException($"the data has no teacher distributions, so λ = {lambda} would only scale the causal-LM loss",
                "use --lm-loss-weight 1 for causal-LM-only training, or train on fused data");
        if (data.HasTeacher && lambda == 1)
            progress?.Message("note: λ = 1 gives the fusion term no weight (plain causal-LM training on the same rows)");
        ITrainableModel Load(string folder)
        {
            var model = loadModel(folder);
            if (data.MaxTokenId >= model.VocabSize)
            {
                model.Dispose();
                throw new FusionException($"the fusion data holds token id {data.MaxTokenId}, outside the {model.VocabSize} logits of {folder}",
                    "train the model whose tokenizer made the target representation (the target of the recipe)");
            }
            return model;
        }
        var trainer = new Trainer(options, data, outFolder, progress, evalData);
        return trainer.Run(modelFolder, Load, resume, cancel);
    }
}
