namespace FuseSharp.Tests.Fusion;

/// <summary>A test class with a fresh scratch folder per test (deleted afterwards).</summary>
public abstract class ScratchFolderTest : IDisposable
{
    private readonly TempDir _temp = TestPaths.NewTempDir();

    /// <summary>The scratch folder.</summary>
    protected string Dir => _temp.Path;

    /// <summary>A path inside the scratch folder.</summary>
    protected string Scratch(string name) => _temp.File(name);

    public void Dispose()
    {
        _temp.Dispose();
        GC.SuppressFinalize(this);
    }
}
