using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FuseSharp.Tensors;

/// <summary>
/// Bytes a tensor lives in: long-indexed, pinned (a stable pointer), disposable. Three kinds:
/// <see cref="NativeStorage"/> (64-byte aligned native memory), <see cref="ManagedStorage"/> (a pinned array)
/// and <see cref="IO.MappedFile"/> regions (a memory-mapped file, zero-copy).
/// </summary>
public abstract unsafe class TensorStorage : IDisposable
{
    /// <summary>Address of the first byte. Valid until the storage is disposed.</summary>
    public abstract byte* Pointer { get; }

    public abstract long ByteLength { get; }

    /// <summary>A byte span over <c>[offset, offset + length)</c>; spans are int-indexed, so one call covers under 2 GiB.</summary>
    public Span<byte> Bytes(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"byte range [{offset}, {offset + length}) outside storage of {ByteLength} bytes");
        return new Span<byte>(Pointer + offset, length);
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing) { }
}

/// <summary>Native memory aligned to 64 bytes (one cache line, one Vector512).</summary>
public sealed unsafe class NativeStorage : TensorStorage
{
    private byte* _ptr;
    private readonly long _length;

    public NativeStorage(long byteLength, bool zero = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteLength);
        _length = byteLength;
        _ptr = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), 64);
        if (zero) NativeMemory.Clear(_ptr, (nuint)byteLength);
        if (byteLength > 0) GC.AddMemoryPressure(byteLength);
    }

    public override byte* Pointer => _ptr != null ? _ptr : throw new ObjectDisposedException(nameof(NativeStorage));

    public override long ByteLength => _length;

    protected override void Dispose(bool disposing)
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        if (_length > 0) GC.RemoveMemoryPressure(_length);
    }

    ~NativeStorage() => Dispose(false);
}

/// <summary>A pinned managed byte array (under 2 GiB); handy for small tensors and tests.</summary>
public sealed unsafe class ManagedStorage : TensorStorage
{
    private readonly byte[] _bytes;

    public ManagedStorage(int byteLength)
    {
        _bytes = GC.AllocateArray<byte>(byteLength, pinned: true);
    }

    public ManagedStorage(byte[] pinnedOrCopied)
    {
        ArgumentNullException.ThrowIfNull(pinnedOrCopied);
        _bytes = GC.AllocateUninitializedArray<byte>(pinnedOrCopied.Length, pinned: true);
        pinnedOrCopied.CopyTo(_bytes, 0);
    }

    public override byte* Pointer => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_bytes));

    public override long ByteLength => _bytes.Length;
}
