using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Packing of A and B blocks into the panel layout the micro-kernels stream: a panel of width W over kc steps is
/// <c>dst[p * W + i] = src(i, p)</c> for <c>i &lt; rows</c> and 0 for <c>rows ≤ i &lt; W</c> (the zero rows/columns
/// of edge panels make every micro-kernel call full-sized; their products are discarded). Sources are F32 or BF16
/// (<c>T</c> = <see cref="ushort"/> holding raw bits, widened exactly while packing, so the
/// micro-kernel always runs at F32 rate). Two source shapes:
/// <list type="bullet">
/// <item>copy: <c>src(i, p) = s[p * ld + i]</c> (op(B) = B, or op(A) = Aᵀ): W contiguous values per step;</item>
/// <item>transpose: <c>src(i, p) = s[i * ld + p]</c> (op(B) = Bᵀ, or op(A) = A): 8 x 8 AVX transposes.</item>
/// </list>
/// The transposing path stores whole 8-float vectors; when W is not a multiple of 8 the last group of a step spills
/// up to 7 floats into the next step (rewritten right after, groups are written last-first) or, after the last
/// step, past the panel into the start of the next one: panel buffers keep <see cref="Slack"/> floats of room, and
/// such panels must be packed in order. The micro-kernels' B panels (NR = 16 or 32, a multiple of 8) never spill, so
/// their shares may be packed by several threads at once (<see cref="GemmBlocked"/>).
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Floats of room a packed buffer needs after its last panel.</summary>
    public const int Slack = 8;

    /// <summary>
    /// Packs consecutive panels of a copy-shaped source (<c>src(i, p) = s[p * ld + i]</c>, <paramref name="cols"/>
    /// values in all): panel q holds values [q·W, q·W + W) and starts at <c>dst + q * panelStride</c>. The source
    /// is swept row by row (8 rows at a time, every panel), so each row is read as one contiguous run: walking one
    /// panel down all k rows would touch a new page per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackCopy<T>(T* s, nint ld, int cols, int kc, float* dst, int width, nint panelStride, bool simd) where T : unmanaged
    {
        int panels = (cols + width - 1) / width;
        for (int p0 = 0; p0 < kc; p0 += 8)
        {
            int p1 = Math.Min(kc, p0 + 8);
            for (int q = 0; q < panels; q++)
            {
                int c0 = q * width, rows = Math.Min(width, cols - c0);
                T* src = s + (nint)p0 * ld + c0;
                float* d = dst + q * panelStride + (nint)p0 * width;
                for (int p = p0; p < p1; p++, src += ld, d += width)
                {
                    int i = 0;
                    if (simd)
                    {
                        for (; i + 8 <= rows; i += 8) Load8(src + i).Store(d + i);
                        if (typeof(T) == typeof(float) && i + 4 <= rows)
                        {
                            Vector128.Load((float*)src + i).Store(d + i);
                            i += 4;
                        }
                    }
                    for (; i < rows; i++) d[i] = ToSingle(src, i);
                    for (; i < width; i++) d[i] = 0;
                }
            }
        }
    }

    /// <summary>Packs one panel from a transpose-shaped source (<c>src(i, p) = s[i * ld + p]</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackTranspose<T>(T* s, nint ld, int rows, int kc, float* dst, int width, bool simd) where T : unmanaged
    {
        int p = 0;
        if (simd && Avx.IsSupported && typeof(T) == typeof(float) && width == 6 && rows == 6)
        {
            p = PackTranspose6((float*)s, ld, kc, dst);
        }
        else if (simd && Avx.IsSupported)
        {
            int groups = (width + 7) / 8;
            // One group of 8 rows at a time over all steps (the last group first: its spill into the next step is
            // then overwritten by group 0), each row's cache lines read whole before the next: a 16-row B panel
            // swept step by step kept 16 rows in flight and, with rows a power of two apart (every K = 2^j from
            // 1024 on: all in one L1 set of 8 ways), evicted each line between its two halves.
            int steps = kc / 8 * 8;
            for (int g = groups - 1; g >= 0; g--)
                for (int q = 0; q < steps; q += 8) TransposeGroup(s, ld, rows, g * 8, q, dst, width);
            p = steps;
        }
        for (int i = 0; i < width; i++)
        {
            float* d = dst + i;
            if (i < rows)
            {
                T* si = s + (nint)i * ld;
                for (int q = p; q < kc; q++) d[(nint)q * width] = ToSingle(si, q);
            }
            else
            {
                for (int q = p; q < kc; q++) d[(nint)q * width] = 0;
            }
        }
    }

    /// <summary>
    /// Rows [r0, r0 + 8) of steps [p, p + 8) (rows at or past <paramref name="rows"/> as zeros), transposed into the
    /// panel. Groups are written last-first within a step range: the 8-float stores of a group that ends past the
    /// panel width spill into the next step's first columns, which group 0 (or the next range) rewrites after.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeGroup<T>(T* s, nint ld, int rows, int r0, int p, float* dst, int width) where T : unmanaged
    {
        T* sp = s + (nint)r0 * ld + p;
        var x0 = r0 + 0 < rows ? Load8(sp) : default;
        var x1 = r0 + 1 < rows ? Load8(sp + ld) : default;
        var x2 = r0 + 2 < rows ? Load8(sp + 2 * ld) : default;
        var x3 = r0 + 3 < rows ? Load8(sp + 3 * ld) : default;
        var x4 = r0 + 4 < rows ? Load8(sp + 4 * ld) : default;
        var x5 = r0 + 5 < rows ? Load8(sp + 5 * ld) : default;
        var x6 = r0 + 6 < rows ? Load8(sp + 6 * ld) : default;
        var x7 = r0 + 7 < rows ? Load8(sp + 7 * ld) : default;
        Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
        float* d = dst + (nint)p * width + r0;
        x0.Store(d);
        x1.Store(d + width);
        x2.Store(d + 2 * width);
        x3.Store(d + 3 * width);
        x4.Store(d + 4 * width);
        x5.Store(d + 5 * width);
        x6.Store(d + 6 * width);
        x7.Store(d + 7 * width);
    }

    /// <summary>
    /// A full 6-row F32 panel (the A panels of the micro-kernel), 8 steps at a time: 6 loads, 10 shuffles and, per
    /// step, a 4-float and a 2-float store (the general path transposes 2 zero rows too and its 8-float stores at a
    /// 6-float pitch split cache lines: this one packs a third faster). Returns the steps done.
    /// </summary>
    private static int PackTranspose6(float* s, nint ld, int kc, float* dst)
    {
        int p = 0;
        for (; p + 8 <= kc; p += 8)
        {
            float* sp = s + p;
            var x0 = Vector256.Load(sp);
            var x1 = Vector256.Load(sp + ld);
            var x2 = Vector256.Load(sp + 2 * ld);
            var x3 = Vector256.Load(sp + 3 * ld);
            var x4 = Vector256.Load(sp + 4 * ld);
            var x5 = Vector256.Load(sp + 5 * ld);
            Transpose4x8(x0, x1, x2, x3, out var u0, out var u1, out var u2, out var u3);
            // Rows 4-5: t4 = [r4c0 r5c0 r4c1 r5c1 | columns 4-5], t5 = the same for columns 2-3 | 6-7.
            var t4 = Avx.UnpackLow(x4, x5);
            var t5 = Avx.UnpackHigh(x4, x5);
            float* d = dst + (nint)p * 6;
            Store6(d, u0.GetLower(), t4.GetLower(), high: false);
            Store6(d + 6, u1.GetLower(), t4.GetLower(), high: true);
            Store6(d + 12, u2.GetLower(), t5.GetLower(), high: false);
            Store6(d + 18, u3.GetLower(), t5.GetLower(), high: true);
            Store6(d + 24, u0.GetUpper(), t4.GetUpper(), high: false);
            Store6(d + 30, u1.GetUpper(), t4.GetUpper(), high: true);
            Store6(d + 36, u2.GetUpper(), t5.GetUpper(), high: false);
            Store6(d + 42, u3.GetUpper(), t5.GetUpper(), high: true);
        }
        return p;
    }

    /// <summary>Rows 0-3 of one step, then rows 4-5 from the low or high pair of <paramref name="rows45"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store6(float* d, Vector128<float> rows03, Vector128<float> rows45, bool high)
    {
        rows03.Store(d);
        if (high) Sse.StoreHigh(d + 4, rows45);
        else Sse.StoreLow(d + 4, rows45);
    }

    /// <summary>8 consecutive values as F32 (BF16 widened exactly: the bits shifted into the high half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8<T>(T* p) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector256.Load((float*)p);
        return BFloat16Conversion.ToSingle8(ref *(ushort*)p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle<T>(T* p, nint i) where T : unmanaged =>
        typeof(T) == typeof(float) ? ((float*)p)[i] : BFloat16Conversion.ToSingle(((ushort*)p)[i]);

    /// <summary>
    /// Rows 0-3 of 8 columns, regrouped by column: <c>u_q = [rows 0-3 of column q | rows 0-3 of column q + 4]</c>
    /// for q = 0..3 (unpacks pair the rows, shuffles pair the pairs; lanes stay put).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        out Vector256<float> u0, out Vector256<float> u1, out Vector256<float> u2, out Vector256<float> u3)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        u0 = Avx.Shuffle(t0, t2, 0x44);
        u1 = Avx.Shuffle(t0, t2, 0xEE);
        u2 = Avx.Shuffle(t1, t3, 0x44);
        u3 = Avx.Shuffle(t1, t3, 0xEE);
    }

    /// <summary>In-register 8 x 8 transpose: row r of the input becomes column r of the output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        Transpose4x8(r0, r1, r2, r3, out var u0, out var u1, out var u2, out var u3);
        Transpose4x8(r4, r5, r6, r7, out var u4, out var u5, out var u6, out var u7);
        r0 = Avx.Permute2x128(u0, u4, 0x20);
        r1 = Avx.Permute2x128(u1, u5, 0x20);
        r2 = Avx.Permute2x128(u2, u6, 0x20);
        r3 = Avx.Permute2x128(u3, u7, 0x20);
        r4 = Avx.Permute2x128(u0, u4, 0x31);
        r5 = Avx.Permute2x128(u1, u5, 0x31);
        r6 = Avx.Permute2x128(u2, u6, 0x31);
        r7 = Avx.Permute2x128(u3, u7, 0x31);
    }
}
