using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace FuseSharp.Tensors;

/// <summary>
/// Converts raw little-endian element bytes of any <see cref="DType"/> to F32 and back. Floating types are
/// exact on widening; narrowing rounds to nearest-even (F16 via TensorPrimitives, BF16 via
/// <see cref="BFloat16Conversion"/>). Float to integer truncates toward zero, like torch's <c>.to(int)</c>.
/// </summary>
public static class DTypeConversion
{
    /// <summary>Effectively computes <c>destination[i] = (float)source[i]</c> for elements stored as <paramref name="dtype"/>.</summary>
    public static void ToSingle(DType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        int size = dtype.Size();
        if (source.Length % size != 0) throw new ArgumentException($"{source.Length} bytes is not a whole number of {dtype} elements", nameof(source));
        int n = source.Length / size;
        if (destination.Length != n) throw new ArgumentException($"destination has {destination.Length} elements, source has {n}", nameof(destination));
        switch (dtype)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(source).CopyTo(destination); break;
            case DType.BF16: BFloat16Conversion.ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination); break;
            case DType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination); break;
            case DType.F64: TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<byte, double>(source), destination); break;
            case DType.I8: for (int i = 0; i < n; i++) destination[i] = (sbyte)source[i]; break;
            case DType.U8: for (int i = 0; i < n; i++) destination[i] = source[i]; break;
            case DType.Bool: for (int i = 0; i < n; i++) destination[i] = source[i] != 0 ? 1f : 0f; break;
            case DType.I16: { var s = MemoryMarshal.Cast<byte, short>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.U16: { var s = MemoryMarshal.Cast<byte, ushort>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.I32: { var s = MemoryMarshal.Cast<byte, int>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.U32: { var s = MemoryMarshal.Cast<byte, uint>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.I64: { var s = MemoryMarshal.Cast<byte, long>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.U64: { var s = MemoryMarshal.Cast<byte, ulong>(source); for (int i = 0; i < n; i++) destination[i] = s[i]; break; }
            case DType.F8E4M3: for (int i = 0; i < n; i++) destination[i] = Float8.E4M3ToSingle(source[i]); break;
            case DType.F8E5M2: for (int i = 0; i < n; i++) destination[i] = Float8.E5M2ToSingle(source[i]); break;
            default: throw new NotSupportedException($"conversion from {dtype} is not supported");
        }
    }

    /// <summary>Effectively computes <c>destination[i] = (dtype)source[i]</c>, writing little-endian element bytes.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, DType dtype, Span<byte> destination)
    {
        int n = source.Length;
        if (destination.Length != (long)n * dtype.Size())
            throw new ArgumentException($"destination has {destination.Length} bytes, {n} {dtype} elements need {(long)n * dtype.Size()}", nameof(destination));
        switch (dtype)
        {
            case DType.F32: source.CopyTo(MemoryMarshal.Cast<byte, float>(destination)); break;
            case DType.BF16: BFloat16Conversion.FromSingle(source, MemoryMarshal.Cast<byte, ushort>(destination)); break;
            case DType.F16: TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<byte, Half>(destination)); break;
            case DType.F64: { var d = MemoryMarshal.Cast<byte, double>(destination); for (int i = 0; i < n; i++) d[i] = source[i]; break; }
            case DType.I8: for (int i = 0; i < n; i++) destination[i] = (byte)(sbyte)source[i]; break;
            case DType.U8: for (int i = 0; i < n; i++) destination[i] = (byte)source[i]; break;
            case DType.Bool: for (int i = 0; i < n; i++) destination[i] = source[i] != 0 ? (byte)1 : (byte)0; break;
            case DType.I16: { var d = MemoryMarshal.Cast<byte, short>(destination); for (int i = 0; i < n; i++) d[i] = (short)source[i]; break; }
            case DType.U16: { var d = MemoryMarshal.Cast<byte, ushort>(destination); for (int i = 0; i < n; i++) d[i] = (ushort)source[i]; break; }
            case DType.I32: { var d = MemoryMarshal.Cast<byte, int>(destination); for (int i = 0; i < n; i++) d[i] = (int)source[i]; break; }
            case DType.U32: { var d = MemoryMarshal.Cast<byte, uint>(destination); for (int i = 0; i < n; i++) d[i] = (uint)source[i]; break; }
            case DType.I64: { var d = MemoryMarshal.Cast<byte, long>(destination); for (int i = 0; i < n; i++) d[i] = (long)source[i]; break; }
            case DType.U64: { var d = MemoryMarshal.Cast<byte, ulong>(destination); for (int i = 0; i < n; i++) d[i] = (ulong)source[i]; break; }
            default: throw new NotSupportedException($"conversion to {dtype} is not supported; write F32, F16 or BF16 instead");
        }
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("FuseSharp needs a little-endian machine");
    }

    /// <summary>Reads one element stored as <paramref name="dtype"/> at <paramref name="index"/> as a double (for small reads and reports).</summary>
    public static double ReadElement(DType dtype, ReadOnlySpan<byte> source, long index)
    {
        int size = dtype.Size();
        var b = source.Slice(checked((int)(index * size)), size);
        return dtype switch
        {
            DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(b),
            DType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(b),
            DType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
            DType.BF16 => BFloat16Conversion.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b)),
            DType.I8 => (sbyte)b[0],
            DType.U8 => b[0],
            DType.Bool => b[0] != 0 ? 1 : 0,
            DType.I16 => BinaryPrimitives.ReadInt16LittleEndian(b),
            DType.U16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
            DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(b),
            DType.U32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
            DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(b),
            DType.U64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
            DType.F8E4M3 => Float8.E4M3ToSingle(b[0]),
            DType.F8E5M2 => Float8.E5M2ToSingle(b[0]),
            _ => throw new NotSupportedException(dtype.ToString()),
        };
    }
}

/// <summary>FP8 decoding (OCP formats as torch names them: float8_e4m3fn has no infinities, float8_e5m2 is IEEE-like).</summary>
public static class Float8
{
    private static readonly float[] E4M3Table = BuildE4M3();

    public static float E4M3ToSingle(byte b) => E4M3Table[b];

    /// <summary>E5M2 is the top byte of an IEEE half.</summary>
    public static float E5M2ToSingle(byte b) => (float)BitConverter.UInt16BitsToHalf((ushort)(b << 8));

    private static float[] BuildE4M3()
    {
        var t = new float[256];
        for (int i = 0; i < 256; i++)
        {
            int sign = (i >> 7) & 1, exp = (i >> 3) & 0xF, man = i & 7;
            float v;
            if (exp == 0xF && man == 7) v = float.NaN;
            else if (exp == 0) v = man / 8f * MathF.Pow(2, -6);
            else v = (1 + man / 8f) * MathF.Pow(2, exp - 7);
            t[i] = sign == 1 ? -v : v;
        }
        return t;
    }
}
