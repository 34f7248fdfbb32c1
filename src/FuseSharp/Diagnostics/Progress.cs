namespace FuseSharp.Diagnostics;

/// <summary>What a progress count counts (for rates and ETA display).</summary>
public enum ProgressUnit
{
    Items,
    Bytes,
    Tokens,
    Steps,
}

/// <summary>
/// Receives progress from long-running library work. The library never draws; the CLI renders bars on stderr.
/// Implementations must be thread-safe: tasks are advanced from worker threads.
/// </summary>
public interface IProgressReporter
{
    /// <summary>Starts a task of <paramref name="total"/> units (0 when unknown). Dispose it when done.</summary>
    IProgressTask Start(string description, long total, ProgressUnit unit = ProgressUnit.Items);

    /// <summary>A one-line message (a phase change, a notice) shown between bars.</summary>
    void Message(string text);
}

/// <summary>One task's progress.</summary>
public interface IProgressTask : IDisposable
{
    void Advance(long amount = 1);

    /// <summary>Sets the completed count (for work that resumes part-way).</summary>
    void SetCompleted(long completed);

    /// <summary>Changes the total when it becomes known.</summary>
    void SetTotal(long total);
}

/// <summary>A reporter that discards everything (library default, tests).</summary>
public sealed class NullProgress : IProgressReporter, IProgressTask
{
    public static readonly NullProgress Instance = new();

    public IProgressTask Start(string description, long total, ProgressUnit unit = ProgressUnit.Items) => this;

    public void Message(string text) { }

    public void Advance(long amount = 1) { }

    public void SetCompleted(long completed) { }

    public void SetTotal(long total) { }

    public void Dispose() { }
}
