using System.Buffers.Binary;
using FuseSharp.Tensors;

namespace FuseSharp.IO;

/// <summary>
/// One safetensors file: the header is read and validated on open (only the header: cost independent of the
/// file's size); tensor data is memory-mapped on first access and handed out zero-copy.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly Dictionary<string, TensorEntry> _byName;
    private readonly object _mapLock = new();
    private MappedFile? _map;
    private bool _disposed;

    private SafetensorsFile(string path, long fileLength, long dataStart, IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        FilePath = path;
        FileLength = fileLength;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public string FilePath { get; }

    public long FileLength { get; }

    /// <summary>Offset of the data buffer in the file (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>Tensors ordered by their position in the file.</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>, reading only its header.</summary>
    /// <exception cref="SafetensorsException">The file is missing, truncated or invalid.</exception>
    public static SafetensorsFile Open(string path)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsException(SafetensorsErrorKind.NoWeights, path, $"cannot open: {e.Message}", inner: e);
        }
        using (fs)
        {
            long length = fs.Length;
            if (length < 8)
                throw new SafetensorsException(SafetensorsErrorKind.Truncated, path, $"file has {length} bytes, fewer than the 8-byte header length",
                    hint: "the file is incomplete; download or write it again");
            Span<byte> lenBytes = stackalloc byte[8];
            fs.ReadExactly(lenBytes);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
            if (n > SafetensorsHeader.MaxHeaderSize)
                throw new SafetensorsException(SafetensorsErrorKind.HeaderTooLarge, path, $"declared header length {n} exceeds the cap of {SafetensorsHeader.MaxHeaderSize} bytes",
                    hint: "this is not a safetensors file, or it is corrupt");
            if ((long)n > length - 8)
                throw new SafetensorsException(SafetensorsErrorKind.HeaderTooLarge, path, $"declared header length {n} is larger than the rest of the file ({length - 8} bytes)",
                    hint: "the file is truncated or not a safetensors file");
            var header = new byte[n];
            fs.ReadExactly(header);
            long dataStart = 8 + (long)n;
            var (tensors, metadata) = SafetensorsHeader.Parse(header, length - dataStart, path);
            return new SafetensorsFile(path, length, dataStart, tensors, metadata);
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public bool TryGetEntry(string name, out TensorEntry entry) => _byName.TryGetValue(name, out entry!);

    /// <exception cref="SafetensorsException">No tensor of that name.</exception>
    public TensorEntry GetEntry(string name) =>
        _byName.TryGetValue(name, out var e) ? e : throw new SafetensorsException(SafetensorsErrorKind.MissingTensor, FilePath, "not in this file", name);

    /// <summary>A zero-copy view of the tensor's bytes in the mapped file; valid while this file is open.</summary>
    public Tensor GetTensor(string name)
    {
        var e = GetEntry(name);
        return new Tensor(e.DType, e.Shape, Map(), DataStart + e.Begin, ownsStorage: false);
    }

    /// <summary>The mapped bytes of a tensor (under 2 GiB; larger tensors use <see cref="GetTensor"/> and its pointer).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var e = GetEntry(name);
        if (e.ByteLength > int.MaxValue) throw new InvalidOperationException($"{FilePath}: tensor '{name}' has {e.ByteLength} bytes; read it in chunks");
        return new ReadOnlySpan<byte>(Map().Pointer + DataStart + e.Begin, (int)e.ByteLength);
    }

    /// <summary>Reads a tensor converted to F32 into <paramref name="destination"/> (length = element count).</summary>
    public void ReadSingle(string name, Span<float> destination)
    {
        var e = GetEntry(name);
        if (destination.Length != e.ElementCount)
            throw new ArgumentException($"destination has {destination.Length} elements, tensor '{name}' has {e.ElementCount}", nameof(destination));
        DTypeConversion.ToSingle(e.DType, GetBytes(name), destination);
    }

    /// <summary>The mapping of the whole file, created on first use.</summary>
    public MappedFile Map()
    {
        if (_map is { } m) return m;
        lock (_mapLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _map ??= new MappedFile(FilePath);
            if (_map.ByteLength != FileLength)
                throw new SafetensorsException(SafetensorsErrorKind.Truncated, FilePath, $"file changed size while open ({FileLength} -> {_map.ByteLength} bytes)");
            return _map;
        }
    }

    public void Dispose()
    {
        lock (_mapLock)
        {
            _disposed = true;
            _map?.Dispose();
            _map = null;
        }
    }
}
