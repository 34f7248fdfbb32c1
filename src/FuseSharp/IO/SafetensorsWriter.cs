using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using FuseSharp.Tensors;

namespace FuseSharp.IO;

/// <summary>
/// Writes one safetensors file whose tensors are declared up front, so the header is written first and data is
/// streamed straight to its final offset: nothing is buffered beyond the caller's span, tensors may be written in
/// any order and from several threads (positional writes), and large tensors in chunks. Tensors are laid out by
/// descending dtype size, then name (the reference writer's order, which keeps every tensor aligned to its
/// element size). The file is written as <c>PATH.tmp-*</c> and renamed into place by <see cref="Commit"/>;
/// disposing without committing deletes it.
/// </summary>
public sealed class SafetensorsWriter : IDisposable
{
    /// <summary>What transformers expects in <c>__metadata__</c> (it refuses files without a known format).</summary>
    public static readonly IReadOnlyDictionary<string, string> DefaultMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    private const int ConvertChunk = 1 << 18;

    private readonly SafeFileHandle _handle;
    private readonly string _tempPath;
    private readonly Dictionary<string, int> _index;
    private readonly long[] _written;
    private readonly long _dataStart;
    private bool _committed;
    private bool _disposed;

    private SafetensorsWriter(string path, string tempPath, SafeFileHandle handle, IReadOnlyList<TensorEntry> layout, long dataStart)
    {
        FilePath = path;
        _tempPath = tempPath;
        _handle = handle;
        Layout = layout;
        _dataStart = dataStart;
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < layout.Count; i++) _index[layout[i].Name] = i;
        _written = new long[layout.Count];
    }

    public string FilePath { get; }

    /// <summary>The tensors with their offsets, in file order.</summary>
    public IReadOnlyList<TensorEntry> Layout { get; }

    /// <summary>Total file size.</summary>
    public long FileLength => _dataStart + (Layout.Count == 0 ? 0 : Layout[^1].End);

    /// <summary>Lays the tensors out in file order with their offsets.</summary>
    public static IReadOnlyList<TensorEntry> ComputeLayout(IEnumerable<TensorSpec> specs)
    {
        var ordered = specs.OrderByDescending(s => s.DType.Size()).ThenBy(s => s.Name, StringComparer.Ordinal).ToList();
        var layout = new List<TensorEntry>(ordered.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var s in ordered)
        {
            if (!names.Add(s.Name)) throw new ArgumentException($"tensor '{s.Name}' declared twice", nameof(specs));
            long len = s.ByteLength;
            layout.Add(new TensorEntry(s.Name, s.DType, s.Shape, offset, checked(offset + len)));
            offset += len;
        }
        return layout;
    }

    /// <summary>Creates <c>PATH.tmp-*</c>, reserves its full size and writes the header.</summary>
    /// <exception cref="SafetensorsException">The file cannot be created or the disk has no room.</exception>
    public static SafetensorsWriter Create(string path, IEnumerable<TensorSpec> specs, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = ComputeLayout(specs);
        var header = SafetensorsHeader.Serialize(layout, metadata ?? DefaultMetadata);
        long dataStart = 8 + header.Length;
        long total = dataStart + (layout.Count == 0 ? 0 : layout[^1].End);
        var temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, preallocationSize: total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new SafetensorsException(SafetensorsErrorKind.WriteFailed, path, $"cannot create ({e.Message})", hint: "check free disk space and permissions", inner: e);
        }
        var w = new SafetensorsWriter(path, temp, handle, layout, dataStart);
        try
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            w.WriteAt(len, 0);
            w.WriteAt(header, 8);
            if (total > dataStart) RandomAccess.SetLength(handle, total);
        }
        catch
        {
            w.Dispose();
            throw;
        }
        return w;
    }

    /// <summary>Writes raw bytes of tensor <paramref name="name"/> starting <paramref name="offsetInTensor"/> bytes into it. Thread-safe.</summary>
    public void Write(string name, ReadOnlySpan<byte> bytes, long offsetInTensor = 0)
    {
        var e = Entry(name, out int i);
        if (offsetInTensor < 0 || offsetInTensor > e.ByteLength - bytes.Length)
            throw new ArgumentOutOfRangeException(nameof(offsetInTensor), $"{FilePath}: bytes [{offsetInTensor}, {offsetInTensor + bytes.Length}) outside tensor '{name}' of {e.ByteLength} bytes");
        WriteAt(bytes, _dataStart + e.Begin + offsetInTensor);
        Interlocked.Add(ref _written[i], bytes.Length);
    }

    /// <summary>Converts F32 values to the tensor's declared dtype and writes them from element <paramref name="elementOffset"/>. Thread-safe.</summary>
    public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset = 0)
    {
        var e = Entry(name, out _);
        if (e.DType == DType.F32)
        {
            Write(name, MemoryMarshal.AsBytes(values), elementOffset * 4);
            return;
        }
        int size = e.DType.Size();
        var buffer = ArrayPool<byte>.Shared.Rent(ConvertChunk * size);
        try
        {
            for (int start = 0; start < values.Length; start += ConvertChunk)
            {
                int n = Math.Min(ConvertChunk, values.Length - start);
                var dst = buffer.AsSpan(0, n * size);
                DTypeConversion.FromSingle(values.Slice(start, n), e.DType, dst);
                Write(name, dst, (elementOffset + start) * size);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks every tensor was fully written, then renames the file into place.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (int i = 0; i < Layout.Count; i++)
        {
            if (_written[i] != Layout[i].ByteLength)
                throw new SafetensorsException(SafetensorsErrorKind.WriteFailed, FilePath, $"{_written[i]} of {Layout[i].ByteLength} bytes were written", Layout[i].Name);
        }
        _handle.Dispose();
        try
        {
            File.Move(_tempPath, FilePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsException(SafetensorsErrorKind.WriteFailed, FilePath, $"cannot move the finished file into place ({e.Message})", inner: e);
        }
        _committed = true;
        _disposed = true;
    }

    private TensorEntry Entry(string name, out int i)
    {
        if (!_index.TryGetValue(name, out i))
            throw new SafetensorsException(SafetensorsErrorKind.MissingTensor, FilePath, "was not declared when the writer was created", name);
        return Layout[i];
    }

    private void WriteAt(ReadOnlySpan<byte> bytes, long offset)
    {
        try
        {
            RandomAccess.Write(_handle, bytes, offset);
        }
        catch (IOException e)
        {
            throw new SafetensorsException(SafetensorsErrorKind.WriteFailed, FilePath, $"write failed ({e.Message})", hint: "check free disk space", inner: e);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        if (_committed) return;
        if (!_disposed) _handle.Dispose();
        _disposed = true;
        TryDelete(_tempPath);
    }
}
