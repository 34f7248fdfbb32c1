using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>
/// Everything that shapes a training run. Defaults are the Hugging Face Trainer's (lr 5e-5, linear schedule, no
/// warmup, AdamW 0.9/0.999/1e-8, no weight decay, clipping at 1.0, seed 42, batch 8, checkpoints every 500 steps).
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps to take; when null, <see cref="Epochs"/> decides.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>Passes over the data (fractional allowed) when <see cref="MaxSteps"/> is null; 1 when both are null.</summary>
    public double? Epochs { get; init; }

    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Micro-batches per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 5e-5;

    public ScheduleKind Schedule { get; init; } = ScheduleKind.Linear;

    /// <summary>Warmup as a fraction of the total steps (rounded up).</summary>
    public double WarmupRatio { get; init; }

    /// <summary>Warmup in steps; wins over <see cref="WarmupRatio"/>.</summary>
    public long? WarmupSteps { get; init; }

    public AdamWOptions Adam { get; init; } = new();

    public WeightDecayPolicy DecayPolicy { get; init; } = WeightDecayPolicy.Default;

    /// <summary>Global-norm clipping threshold; 0 disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Keys the data order (and any other randomness).</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Shuffle the data each epoch.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>A checkpoint every this many steps (0: only at the end).</summary>
    public long SaveSteps { get; init; } = 500;

    /// <summary>Checkpoints to keep (oldest deleted first); null keeps all.</summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>A held-out evaluation every this many steps (0: only at the end), when evaluation data is given.</summary>
    public long EvalSteps { get; init; }

    public ObjectiveOptions Objective { get; init; } = new();

    /// <summary>Id written into padded slots of a micro-batch (never reaches a loss).</summary>
    public int PadTokenId { get; init; }

    /// <summary>Dtype of the final model's weights (checkpoints are always float32, for an exact resume).</summary>
    public DType SaveDType { get; init; } = DType.F32;

    /// <exception cref="TrainingException">An option outside its range.</exception>
    public void Validate()
    {
        if (MaxSteps is { } s && s <= 0) throw new TrainingException($"--steps {s} must be positive");
        if (Epochs is { } e && !(e > 0 && double.IsFinite(e))) throw new TrainingException($"--epochs {e} must be positive");
        if (MaxSteps is not null && Epochs is not null) throw new TrainingException("give either --steps or --epochs, not both");
        if (BatchSize <= 0) throw new TrainingException($"--batch-size {BatchSize} must be positive");
        if (GradientAccumulation <= 0) throw new TrainingException($"--grad-accum {GradientAccumulation} must be positive");
        if (!(LearningRate >= 0) || double.IsInfinity(LearningRate)) throw new TrainingException($"--lr {LearningRate} must be a finite number >= 0");
        if (!(MaxGradNorm >= 0) || double.IsInfinity(MaxGradNorm)) throw new TrainingException($"--max-grad-norm {MaxGradNorm} must be >= 0 (0 disables clipping)");
        if (SaveSteps < 0) throw new TrainingException($"--save-steps {SaveSteps} must be >= 0 (0: only at the end)");
        if (EvalSteps < 0) throw new TrainingException($"--eval-steps {EvalSteps} must be >= 0");
        if (SaveTotalLimit is < 1) throw new TrainingException($"--save-total-limit {SaveTotalLimit} must be at least 1");
        if (PadTokenId < 0) throw new TrainingException($"pad token id {PadTokenId} is negative");
        if (SaveDType is not (DType.F32 or DType.BF16 or DType.F16)) throw new TrainingException($"models are saved as float32, bfloat16 or float16, not {SaveDType}");
        Adam.Validate();
        Objective.Validate();
        _ = LearningRateSchedule.WarmupFrom(1, WarmupRatio, WarmupSteps);
    }

    /// <summary>Optimizer steps of the run over <paramref name="examples"/> sequences.</summary>
    public long TotalSteps(int examples)
    {
        if (MaxSteps is { } s) return s;
        double perStep = (double)BatchSize * GradientAccumulation;
        return Math.Max(1, (long)Math.Ceiling((Epochs ?? 1.0) * examples / perStep));
    }

    /// <summary>
    /// The options a resumed run must share with the interrupted one for its trajectory to continue unchanged,
    /// with the data's size and description.
    /// </summary>
    public JsonObject Fingerprint(long totalSteps, int dataCount, string dataDescription) => new()
    {
        ["total_steps"] = totalSteps,
        ["batch_size"] = BatchSize,
        ["grad_accum"] = GradientAccumulation,
        ["lr"] = LearningRate,
        ["schedule"] = Schedule.ToString().ToLowerInvariant(),
        ["warmup_steps"] = LearningRateSchedule.WarmupFrom(totalSteps, WarmupRatio, WarmupSteps),
        ["adam_betas"] = string.Create(CultureInfo.InvariantCulture, $"{Adam.Beta1},{Adam.Beta2}"),
        ["adam_eps"] = Adam.Epsilon,
        ["weight_decay"] = Adam.WeightDecay,
        ["decay_all"] = DecayPolicy.DecayAll,
        ["no_decay"] = string.Join(",", DecayPolicy.NoDecayPatterns ?? []),
        ["max_grad_norm"] = MaxGradNorm,
        ["seed"] = Seed,
        ["shuffle"] = Shuffle,
        ["lm_loss_weight"] = Objective.LmLossWeight,
        ["fusion_loss"] = Objective.FusionLoss.ToString(),
        ["fusion_mask"] = Objective.FusionMask.ToString(),
        ["loss_reduction"] = Objective.Reduction.ToString(),
        ["pad_token_id"] = PadTokenId,
        ["data_sequences"] = dataCount,
        ["data"] = dataDescription,
    };
}
