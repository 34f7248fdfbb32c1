namespace FuseSharp.Training;

/// <summary>The shape of the learning rate after warmup (transformers' <c>lr_scheduler_type</c>).</summary>
public enum ScheduleKind
{
    /// <summary>Linear decay to 0 at the last step (<c>get_linear_schedule_with_warmup</c>, the Trainer's default).</summary>
    Linear,

    /// <summary>Half a cosine from the peak to 0 (<c>get_cosine_schedule_with_warmup</c>, num_cycles 0.5).</summary>
    Cosine,

    /// <summary>The peak held (<c>get_constant_schedule_with_warmup</c>; without warmup <c>get_constant_schedule</c>).</summary>
    Constant,
}

/// <summary>
/// The learning rate of every optimizer step, with the formulas of transformers' <c>optimization.py</c>: for
/// 0-based step <c>s</c> (the number of steps already taken), warmup <c>w</c> and total <c>n</c>,
/// <code>
/// s &lt; w:   s / max(1, w)
/// linear:   max(0, (n − s) / max(1, n − w))
/// cosine:   max(0, ½(1 + cos(π · (s − w) / max(1, n − w))))
/// constant: 1
/// </code>
/// times the peak rate. As in transformers, the first step of a warmup runs at rate 0.
/// </summary>
/// <param name="Kind">Decay after warmup.</param>
/// <param name="PeakLearningRate">The rate reached at the end of warmup.</param>
/// <param name="WarmupSteps">Steps of linear warmup.</param>
/// <param name="TotalSteps">Optimizer steps of the whole run.</param>
public sealed record LearningRateSchedule(ScheduleKind Kind, double PeakLearningRate, long WarmupSteps, long TotalSteps)
{
    /// <summary>
    /// Warmup steps from a ratio of the total, rounded up as <c>TrainingArguments.get_warmup_steps</c> does
    /// (<c>ceil(total · ratio)</c>); an explicit step count wins over the ratio.
    /// </summary>
    public static long WarmupFrom(long totalSteps, double warmupRatio, long? warmupSteps)
    {
        if (warmupSteps is { } w)
        {
            if (w < 0) throw new TrainingException($"--warmup-steps {w} is negative");
            return w;
        }
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new TrainingException($"--warmup-ratio {warmupRatio} must lie in [0, 1]");
        return (long)Math.Ceiling(totalSteps * warmupRatio);
    }

    /// <summary>The multiplier of the peak rate at 0-based step <paramref name="step"/>.</summary>
    public double Factor(long step)
    {
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        double decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        return Kind switch
        {
            ScheduleKind.Linear => Math.Max(0.0, (TotalSteps - step) / decaySteps),
            ScheduleKind.Cosine => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * 0.5 * 2.0 * ((step - WarmupSteps) / decaySteps)))),
            ScheduleKind.Constant => 1.0,
            _ => throw new ArgumentOutOfRangeException(nameof(step), Kind, "unknown schedule"),
        };
    }

    /// <summary>The learning rate of 0-based step <paramref name="step"/>.</summary>
    public double LearningRate(long step) => PeakLearningRate * Factor(step);
}
