using System.IO.MemoryMappedFiles;
using FuseSharp.Tensors;

namespace FuseSharp.IO;

/// <summary>
/// A whole file mapped read-only into memory; the pointer stays valid until disposal. Pages are read on
/// first touch, so mapping costs nothing until tensors are read (zero-copy, and the OS page cache is shared
/// across processes).
/// </summary>
public sealed unsafe class MappedFile : TensorStorage
{
    private readonly MemoryMappedFile _mmf;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _ptr;

    public MappedFile(string path)
    {
        FilePath = path;
        var length = new FileInfo(path).Length;
        if (length == 0) throw new IOException($"{path}: cannot map an empty file");
        _mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
        _view = _mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _ptr = p + _view.PointerOffset;
        ByteLengthValue = length;
    }

    public string FilePath { get; }

    private long ByteLengthValue { get; }

    public override byte* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(FilePath);

    public override long ByteLength => ByteLengthValue;

    protected override void Dispose(bool disposing)
    {
        if (_ptr == null) return;
        _ptr = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mmf.Dispose();
    }
}
