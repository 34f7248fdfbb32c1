using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors;

/// <summary>
/// BF16 &lt;-&gt; F32 kernels. BF16 is the top half of an F32, so widening is a 16-bit shift. Narrowing
/// rounds to nearest, ties to even, as torch does (<c>c10::round_to_nearest_even</c>): add
/// <c>0x7FFF + lsb</c> and drop the low half; every NaN becomes the canonical quiet NaN <c>0x7FC0</c>
/// (torch's choice), so NaN stays NaN and never rounds to infinity.
/// </summary>
public static class BFloat16Conversion
{
    /// <summary>Canonical BF16 NaN, as torch writes it.</summary>
    public const ushort NaN = 0x7FC0;

    /// <summary>One BF16 value to F32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>One F32 value to BF16, round-to-nearest-even; NaN to 0x7FC0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u) return NaN;
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>
    /// Eight BF16 values from <paramref name="source"/> as F32 in a register (zero-extended, shifted into the high half:
    /// exact), for kernels that decode as they compute instead of converting into a buffer first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle8(ref ushort source)
    {
        var bits = Vector128.LoadUnsafe(ref source);
        return Avx2.IsSupported
            ? Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(bits), 16).AsSingle()
            : Vector256.ShiftLeft(Vector256.WidenLower(bits.ToVector256Unsafe()), 16).AsSingle();
    }

    /// <summary>Effectively computes <c>destination[i] = (float)source[i]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // Called per chunk of every read: fully optimised from the first call, no tier-0 / OSR code for its loop.
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        int i = 0;
        ref ushort src = ref MemoryMarshal.GetReference(source);
        ref uint dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= source.Length - 32; i += 32)
            {
                var v = Vector512.LoadUnsafe(ref src, (nuint)i);
                var (lo, hi) = Vector512.Widen(v);
                Vector512.ShiftLeft(lo, 16).StoreUnsafe(ref dst, (nuint)i);
                Vector512.ShiftLeft(hi, 16).StoreUnsafe(ref dst, (nuint)i + 16);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= source.Length - 16; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref src, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).StoreUnsafe(ref dst, (nuint)i);
                Vector256.ShiftLeft(hi, 16).StoreUnsafe(ref dst, (nuint)i + 8);
            }
        }
        for (; i < source.Length; i++) Unsafe.Add(ref dst, i) = (uint)Unsafe.Add(ref src, i) << 16;
    }

    /// <summary>Effectively computes <c>destination[i] = (bf16)source[i]</c>, round-to-nearest-even, NaN to 0x7FC0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // Called per chunk of every write: fully optimised from the first call, no tier-0 / OSR code for its loop.
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        int i = 0;
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref ushort dst = ref MemoryMarshal.GetReference(destination);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= source.Length - 32; i += 32)
            {
                var lo = Round512(Vector512.LoadUnsafe(ref src, (nuint)i));
                var hi = Round512(Vector512.LoadUnsafe(ref src, (nuint)i + 16));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= source.Length - 16; i += 16)
            {
                var lo = Round256(Vector256.LoadUnsafe(ref src, (nuint)i));
                var hi = Round256(Vector256.LoadUnsafe(ref src, (nuint)i + 8));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < source.Length; i++) Unsafe.Add(ref dst, i) = FromSingle(BitConverter.UInt32BitsToSingle(Unsafe.Add(ref src, i)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Round512(Vector512<uint> u)
    {
        var rounded = (u + Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One)) >> 16;
        var isNaN = Vector512.GreaterThan(u & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        return Vector512.ConditionalSelect(isNaN, Vector512.Create((uint)NaN), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Round256(Vector256<uint> u)
    {
        var rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        var isNaN = Vector256.GreaterThan(u & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        return Vector256.ConditionalSelect(isNaN, Vector256.Create((uint)NaN), rounded);
    }
}
