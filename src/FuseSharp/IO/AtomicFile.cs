using System.Text;

namespace FuseSharp.IO;

/// <summary>Small files written whole: to a temporary sibling first, then renamed over the target.</summary>
public static class AtomicFile
{
    private static readonly UTF8Encoding Utf8NoBom = new(false);

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Utf8NoBom.GetBytes(text));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw new FuseSharpException($"{path}: cannot write ({e.Message})", "check free disk space and permissions", e);
        }
    }
}

/// <summary>
/// An output folder built in a temporary sibling (<c>.NAME.tmp-*</c>) and renamed into place by
/// <see cref="Commit"/>, so an interrupted run never leaves a half-written model. Disposing without committing
/// deletes the temporary folder.
/// </summary>
public sealed class AtomicOutputDirectory : IDisposable
{
    private bool _done;

    private AtomicOutputDirectory(string finalPath, string tempPath, bool overwrite)
    {
        FinalPath = finalPath;
        Path = tempPath;
        Overwrite = overwrite;
    }

    /// <summary>Where the folder ends up.</summary>
    public string FinalPath { get; }

    /// <summary>The temporary folder to write into.</summary>
    public string Path { get; }

    public bool Overwrite { get; }

    /// <summary>
    /// Starts an output folder. Fails at once (before any work) if <paramref name="finalPath"/> exists, is not
    /// empty and <paramref name="overwrite"/> is false.
    /// </summary>
    public static AtomicOutputDirectory Create(string finalPath, bool overwrite = false)
    {
        var full = System.IO.Path.GetFullPath(finalPath.TrimEnd('/', '\\'));
        CheckTarget(full, overwrite);
        var parent = System.IO.Path.GetDirectoryName(full)!;
        try
        {
            Directory.CreateDirectory(parent);
            var temp = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
            Directory.CreateDirectory(temp);
            return new AtomicOutputDirectory(full, temp, overwrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FuseSharpException($"{full}: cannot create output folder ({e.Message})", "check the path and permissions", e);
        }
    }

    private static void CheckTarget(string full, bool overwrite)
    {
        if (File.Exists(full))
            throw new FuseSharpException($"{full}: output path is a file", "choose a folder path");
        if (!overwrite && Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new FuseSharpException($"{full}: output folder exists and is not empty", "choose another folder, delete it, or pass --overwrite");
    }

    /// <summary>Renames the finished folder into place (replacing an existing one only when overwriting).</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        CheckTarget(FinalPath, Overwrite);
        string? old = null;
        try
        {
            if (Directory.Exists(FinalPath))
            {
                old = FinalPath + $".old-{Environment.ProcessId}";
                Directory.Move(FinalPath, old);
            }
            Directory.Move(Path, FinalPath);
            _done = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (old is not null && !Directory.Exists(FinalPath)) Directory.Move(old, FinalPath);
            throw new FuseSharpException($"{FinalPath}: cannot move the finished folder into place ({e.Message})", inner: e, hint: null);
        }
        if (old is not null) Directory.Delete(old, recursive: true);
    }

    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
