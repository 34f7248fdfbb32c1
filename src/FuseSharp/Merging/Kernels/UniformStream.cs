using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Per-element uniform 32-bit draws for random masks (DARE, DELLA), vectorised: the draw of element e is a pure
/// function of (key, e), two rounds of a 32-bit integer mixer (the "lowbias32" finaliser: xor-shift, multiply,
/// xor-shift, multiply, xor-shift) over the low and high halves of e, so any element's draw is independent of
/// chunking, thread count and order. The 64-bit key comes from <see cref="CounterRandom"/> keyed by
/// (seed, tensor name, model index). 32-bit multiplies vectorise on every x64 CPU with AVX2, unlike SplitMix64's
/// 64-bit ones, which matters at billions of draws per merge.
/// </summary>
public readonly struct UniformStream
{
    private readonly uint _k0, _k1;

    public UniformStream(CounterRandom stream)
    {
        ulong k = stream.Derive(0x0D_A7E5_7EA3).NextUInt64(0);
        _k0 = (uint)k;
        _k1 = (uint)(k >> 32);
    }

    /// <summary>The draw of element <paramref name="e"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint At(long e) => Mix(Mix((uint)e ^ _k0) + ((uint)((ulong)e >> 32) ^ _k1));

    /// <summary>
    /// Effectively computes <c>destination[j] = At(start + j)</c>: eight at a time with <see cref="At8"/> while the
    /// elements share start's high 32 bits, then one by one. (An earlier <c>Vector&lt;uint&gt;</c> loop ran at about
    /// 0.6 ns per draw when first compiled but about 4.8 ns once tiered PGO recompiled it.)
    /// </summary>
    public unsafe void Fill(long start, Span<uint> destination)
    {
        int j = 0, n = destination.Length;
        fixed (uint* d = destination)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var keys = Keys8(start);
                int same = SameHighWord(start, n);
                for (; j <= same - 8; j += 8) At8((uint)start + (uint)j, keys).Store(d + j);
            }
            for (; j < n; j++) d[j] = At(start + j);
        }
    }

    /// <summary>
    /// How many elements from <paramref name="start"/> on (at most <paramref name="length"/>) share start's high 32
    /// bits: over those, <see cref="At8"/> with <see cref="Keys8"/> makes the draws eight at a time.
    /// </summary>
    internal static int SameHighWord(long start, int length) => (int)Math.Min(length, (((start >> 32) + 1) << 32) - start);

    /// <summary>The key vectors <see cref="At8"/> takes for elements whose high 32 bits are those of <paramref name="e"/>.</summary>
    internal (Vector256<uint> Low, Vector256<uint> High) Keys8(long e) => (Vector256.Create(_k0), Vector256.Create((uint)((ulong)e >> 32) ^ _k1));

    /// <summary>
    /// The draws of the eight elements whose low 32 bits are <paramref name="low"/> .. low + 7 (no carry into the high
    /// bits) and whose high bits gave <paramref name="keys"/> (<see cref="Keys8"/>): <see cref="At"/> eight at a time,
    /// for kernels that consume the draws as they are made.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> At8(uint low, (Vector256<uint> Low, Vector256<uint> High) keys) => At8Lanes(Vector256.Create(low) + Lanes8, keys);

    /// <summary>The counters <see cref="At8Lanes"/> takes for elements <paramref name="e"/> .. e + 7 (their low 32 bits).</summary>
    internal static Vector256<uint> Counters8(long e) => Vector256.Create((uint)e) + Lanes8;

    /// <summary>
    /// The draws of the elements whose low 32 bits are the lanes of <paramref name="low"/> (high bits as for
    /// <see cref="At8"/>), for loops that step a vector of counters. A draw is a serial chain of 18 vector operations
    /// (about 26 cycles of latency, four of them multiplies), so loops that do much else per vector make their draws two
    /// vectors ahead of use: the chains then overlap the rest of the loop instead of filling the scheduler with waiting
    /// operations (DELLA's pass 1: 0.9 → 0.6 ns/element on Zen 3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> At8Lanes(Vector256<uint> low, (Vector256<uint> Low, Vector256<uint> High) keys) => Mix(Mix(low ^ keys.Low) + keys.High);

    private static readonly Vector256<uint> Lanes8 = Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Mix(Vector256<uint> x)
    {
        x ^= Vector256.ShiftRightLogical(x, 16);
        x *= Vector256.Create(0x7FEB_352Du);
        x ^= Vector256.ShiftRightLogical(x, 15);
        x *= Vector256.Create(0x846C_A68Bu);
        return x ^ Vector256.ShiftRightLogical(x, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Mix(uint x)
    {
        x ^= x >> 16;
        x *= 0x7FEB_352Du;
        x ^= x >> 15;
        x *= 0x846C_A68Bu;
        return x ^ (x >> 16);
    }
}
