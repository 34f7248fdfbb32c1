namespace FuseSharp.Tests;

/// <summary>Where committed test data and scratch folders are.</summary>
internal static class TestPaths
{
    /// <summary>A file or folder under the copied <c>Fixtures/</c>.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>A fresh empty folder under the system temp directory; delete it with <see cref="TempDir.Dispose"/>.</summary>
    public static TempDir NewTempDir() => new();
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fusesharp-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
