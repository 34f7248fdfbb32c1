using Xunit;

namespace FuseSharp.Tests;

/// <summary>
/// The test classes that set the process-wide <c>Parallelism.MaxThreads</c> (to compare results across thread counts)
/// and restore it afterwards: in one collection they run one after another, so no class restores a value another one
/// set. The rest of the suite only reads the setting, and every result it checks is the same for any thread count.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ParallelismCollection
{
    public const string Name = "Parallelism.MaxThreads";
}
