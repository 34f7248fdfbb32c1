namespace FuseSharp.Tensors;

/// <summary>
/// How many threads compute kernels and executors may use. One process-wide setting (the CLI's
/// <c>--threads</c>); defaults to the processor count.
/// </summary>
public static class Parallelism
{
    private static int _maxThreads = Environment.ProcessorCount;

    public static int MaxThreads
    {
        get => _maxThreads;
        set => _maxThreads = value <= 0 ? Environment.ProcessorCount : value;
    }

    /// <summary>Options for <see cref="Parallel"/> honouring <see cref="MaxThreads"/>.</summary>
    public static ParallelOptions Options => new() { MaxDegreeOfParallelism = MaxThreads };
}
