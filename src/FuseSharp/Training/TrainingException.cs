namespace FuseSharp.Training;

/// <summary>A training run that cannot start or continue: bad options, a model it cannot train, a checkpoint it cannot read or write.</summary>
public class TrainingException : FuseSharpException
{
    public TrainingException(string message, string? hint = null, Exception? inner = null) : base(message, hint, inner) { }

    public TrainingException() : base("training failed") { }

    public TrainingException(string message) : base(message) { }

    public TrainingException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Training data that cannot be used; names the file and, where there is one, the line (1-based) or record.</summary>
public sealed class TrainingDataException : TrainingException
{
    public TrainingDataException(string path, long line, string problem, string? hint = null, Exception? inner = null)
        : base(line > 0 ? $"{path}:{line}: {problem}" : $"{path}: {problem}", hint, inner)
    {
        FilePath = path;
        Line = line;
    }

    /// <summary>A problem at <paramref name="location"/>, e.g. "record 17" of a JSON array file.</summary>
    public TrainingDataException(string path, string location, string problem, string? hint = null, Exception? inner = null)
        : base($"{path}: {location}: {problem}", hint, inner)
    {
        FilePath = path;
    }

    public TrainingDataException() : base("invalid training data") { }

    public TrainingDataException(string message) : base(message) { }

    public TrainingDataException(string message, Exception inner) : base(message, inner) { }

    public string FilePath { get; } = "";

    /// <summary>1-based line, or 0 when the problem is the whole file or a record of a JSON array.</summary>
    public long Line { get; }
}

/// <summary>
/// The loss or the gradient norm became NaN or infinite. The optimizer step was not taken, nothing was saved, and
/// the last good checkpoint (if any) is untouched.
/// </summary>
public sealed class TrainingDivergedException : TrainingException
{
    public TrainingDivergedException(long step, string what, string? lastCheckpoint)
        : base($"{what} at step {step}; training stopped before the optimizer step"
            + (lastCheckpoint is null ? " (no checkpoint was saved yet)" : $"; the last good checkpoint is {lastCheckpoint}"),
            lastCheckpoint is null
                ? "lower --lr, raise --warmup-ratio, or set --max-grad-norm (1.0 is usual)"
                : "lower --lr or raise --warmup-ratio, then continue from the checkpoint with --resume")
    {
        Step = step;
        LastCheckpoint = lastCheckpoint;
    }

    public TrainingDivergedException() : base("training diverged") { }

    public TrainingDivergedException(string message) : base(message) { }

    public TrainingDivergedException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The 1-based optimizer step whose loss or gradient was not finite.</summary>
    public long Step { get; }

    /// <summary>Path of the last checkpoint written before the failure, or null.</summary>
    public string? LastCheckpoint { get; }
}
