using System.Runtime.InteropServices;

namespace FuseSharp.Tensors;

/// <summary>
/// A dense row-major tensor: a dtype, a shape and a byte range of a <see cref="TensorStorage"/>.
/// A tensor created by <see cref="Allocate"/> owns its storage; a view (for example of a memory-mapped
/// safetensors file) does not, and stays valid only while its owner is alive.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    private readonly bool _ownsStorage;

    public Tensor(DType dtype, Shape shape, TensorStorage storage, long byteOffset, bool ownsStorage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        DType = dtype;
        Shape = shape;
        Storage = storage;
        ByteOffset = byteOffset;
        ByteLength = checked(shape.ElementCount * dtype.Size());
        if (byteOffset < 0 || byteOffset > storage.ByteLength - ByteLength)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"tensor bytes [{byteOffset}, {byteOffset + ByteLength}) outside storage of {storage.ByteLength} bytes");
        _ownsStorage = ownsStorage;
    }

    public DType DType { get; }

    public Shape Shape { get; }

    public TensorStorage Storage { get; }

    public long ByteOffset { get; }

    public long ByteLength { get; }

    public long ElementCount => Shape.ElementCount;

    public byte* Pointer => Storage.Pointer + ByteOffset;

    /// <summary>A new tensor in 64-byte aligned native memory (zeroed unless <paramref name="zero"/> is false).</summary>
    public static Tensor Allocate(DType dtype, Shape shape, bool zero = true) =>
        new(dtype, shape, new NativeStorage(checked(shape.ElementCount * dtype.Size()), zero), 0, ownsStorage: true);

    /// <summary>A new F32 tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromSingle(ReadOnlySpan<float> values, Shape shape)
    {
        if (shape.ElementCount != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill shape {shape}", nameof(values));
        var t = Allocate(DType.F32, shape, zero: false);
        values.CopyTo(t.AsSpan<float>());
        return t;
    }

    /// <summary>The elements as a span of <typeparamref name="T"/>, whose size must equal the dtype size. Under 2^31 elements.</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        if (sizeof(T) != DType.Size())
            throw new InvalidOperationException($"cannot view {DType} elements as {typeof(T).Name}");
        if (ElementCount > int.MaxValue)
            throw new InvalidOperationException($"tensor of {ElementCount} elements is too large for one span; process it in chunks");
        return new Span<T>(Pointer, (int)ElementCount);
    }

    /// <summary>The raw little-endian bytes (under 2 GiB).</summary>
    public Span<byte> AsBytes()
    {
        if (ByteLength > int.MaxValue)
            throw new InvalidOperationException($"tensor of {ByteLength} bytes is too large for one span; process it in chunks");
        return new Span<byte>(Pointer, (int)ByteLength);
    }

    /// <summary>Converts every element to F32 into <paramref name="destination"/> (length = element count).</summary>
    public void ToSingle(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"destination has {destination.Length} elements, tensor has {ElementCount}", nameof(destination));
        DTypeConversion.ToSingle(DType, AsBytes(), destination);
    }

    /// <summary>A new F32 array with the elements converted.</summary>
    public float[] ToSingleArray()
    {
        var a = new float[checked((int)ElementCount)];
        ToSingle(a);
        return a;
    }

    /// <summary>A new tensor of <paramref name="dtype"/> holding the converted elements.</summary>
    public Tensor ConvertTo(DType dtype)
    {
        var dst = Allocate(dtype, Shape, zero: false);
        if (dtype == DType) { AsBytes().CopyTo(dst.AsBytes()); return dst; }
        var tmp = DType == DType.F32 ? null : ToSingleArray();
        ReadOnlySpan<float> src = tmp ?? MemoryMarshal.Cast<byte, float>(AsBytes());
        DTypeConversion.FromSingle(src, dtype, dst.AsBytes());
        return dst;
    }

    public override string ToString() => $"Tensor({DType}, {Shape})";

    public void Dispose()
    {
        if (_ownsStorage) Storage.Dispose();
    }
}
