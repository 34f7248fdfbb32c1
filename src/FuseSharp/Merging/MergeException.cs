namespace FuseSharp.Merging;

/// <summary>
/// A merge configuration that cannot run: a YAML syntax error, an unknown key, a bad parameter value, a model that
/// cannot be found, a method that gets the wrong number of models. Names the file and, where known, the line.
/// </summary>
public sealed class MergeConfigException : FuseSharpException
{
    public MergeConfigException(string? path, int line, string problem, string? hint = null, Exception? inner = null)
        : base(Format(path, line, problem), hint, inner)
    {
        FilePath = path;
        Line = line;
    }

    public MergeConfigException() : base("invalid merge configuration") { }

    public MergeConfigException(string message) : base(message) { }

    public MergeConfigException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The config file, or null for a config given as text.</summary>
    public string? FilePath { get; }

    /// <summary>1-based line of the offending node, or 0 when the problem is not tied to a line.</summary>
    public int Line { get; }

    private static string Format(string? path, int line, string problem)
    {
        var where = path ?? "merge config";
        return line > 0 ? $"{where}:{line}: {problem}" : $"{where}: {problem}";
    }
}

/// <summary>
/// A merge that fails while planning or running on a particular tensor: a tensor missing from a model, shapes that
/// do not match, a NaN/Inf result. Names the tensor and the model(s) involved.
/// </summary>
public sealed class MergeException : FuseSharpException
{
    public MergeException(string problem, string? tensor = null, string? hint = null, Exception? inner = null)
        : base(tensor is null ? problem : $"tensor '{tensor}': {problem}", hint, inner) => Tensor = tensor;

    public MergeException() : base("merge failed") { }

    public MergeException(string message) : base(message) { }

    public MergeException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The output tensor being merged, when the problem is about one.</summary>
    public string? Tensor { get; }
}
