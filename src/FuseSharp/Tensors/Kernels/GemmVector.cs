using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Matrix times a few vectors (decoding: 1 to <see cref="MaxRows"/> rows), where the matrix is read once and the run
/// time is the time to stream it from memory; packing would read it twice. Computes, for <c>i &lt; rows</c> and
/// <c>j &lt; cols</c>:
/// <c>y(i, j) (+)= Σ_p x[i * ldx + p] · w(j, p)</c>, with <c>y(i, j)</c> at <c>y[i * ysx + j * ysw]</c> and
/// <list type="bullet">
/// <item>dot form, <c>w(j, p) = w[j * ldw + p]</c> (a Linear weight [N, K]): R rows of w (4 for 1-2 vectors, 2 for
/// 3-4) against every x at once, R x rows independent FMA chains, each w vector loaded once;</item>
/// <item>axpy form, <c>w(j, p) = w[p * ldw + j]</c>: y accumulates in a buffer spanning the thread's whole column
/// range (so w is read in long contiguous runs: DRAM pages and the prefetchers want that) while R rows of w at a
/// time stream past, each w vector loaded once for every x.</item>
/// </list>
/// The kernels take 1 to 4 vectors; more are done in groups of 4. Threads split the columns j. Vector256 is enough
/// to saturate memory bandwidth even where Vector512 exists; the scalar form is the fallback without 256-bit SIMD.
/// </summary>
internal static unsafe class GemmVector
{
    /// <summary>Most rows (vectors) the dispatcher sends here; beyond, packing W for the blocked path pays off.</summary>
    public const int MaxRows = 8;

    /// <summary>Largest axpy column chunk (floats per vector): 4 x 8192 accumulators (128 KiB) stay in L2.</summary>
    private const int MaxChunk = 8192;

    /// <summary>Matrix values per thread below which one more thread costs more than it saves.</summary>
    private const long ValuesPerThread = 1L << 17;

    public static void Run<TW>(int threads, bool simd, int rows, int cols, int k, float* x, nint ldx,
        TW* w, nint ldw, bool dotForm, float* y, nint ysx, nint ysw, bool accumulate) where TW : unmanaged
    {
        threads = (int)Math.Clamp((long)cols * k / ValuesPerThread, 1, threads);
        // Ranges are whole groups of 4 rows of w (dot form), so the grouping (and the bits) do not depend on the
        // thread count, or of 16 columns (axpy form), so that no two threads write the same cache line of a y row.
        int unit = dotForm ? 4 : 16, units = (cols + unit - 1) / unit;
        threads = Math.Min(threads, units);
        var job = new Job<TW>(simd, rows, cols, k, x, ldx, w, ldw, dotForm, y, ysx, ysw, accumulate, threads, unit);
        if (threads == 1) job.Part(0);
        else Parallel.For(0, threads, Parallelism.Options, job.Part);
    }

    /// <summary>Compile-time vector counts: the JIT specialises each kernel per count and drops the unused chains.</summary>
    private interface ICount { static abstract int Value { get; } }
    private readonly struct One : ICount { public static int Value => 1; }
    private readonly struct Two : ICount { public static int Value => 2; }
    private readonly struct Three : ICount { public static int Value => 3; }
    private readonly struct Four : ICount { public static int Value => 4; }

    private sealed class Job<TW>(bool simd, int rows, int cols, int k, float* x, nint ldx, TW* w, nint ldw, bool dotForm,
        float* y, nint ysx, nint ysw, bool accumulate, int threads, int unit) where TW : unmanaged
    {
        public void Part(int t)
        {
            int units = (cols + unit - 1) / unit;
            int j0 = (int)((long)units * t / threads) * unit, j1 = Math.Min(cols, (int)((long)units * (t + 1) / threads) * unit);
            if (j0 >= j1) return;
            if (!simd)
            {
                if (dotForm) DotScalar(j0, j1);
                else AxpyScalar(j0, j1);
                return;
            }
            // More than 4 vectors: groups of 4. The dot form runs every group over a block of w rows that fits
            // in half of L2 before moving on, so w still comes from memory once; the axpy form streams w per group.
            int block = dotForm ? (int)Math.Clamp((256 << 10) / ((long)k * sizeof(TW)) / 4 * 4, 4, 1 << 20) : j1 - j0;
            for (int jb = j0; jb < j1; jb += block)
            {
                int je = Math.Min(j1, jb + block);
                for (int g = 0; g < rows; g += 4)
                {
                    float* xg = x + g * ldx, yg = y + g * ysx;
                    switch (Math.Min(4, rows - g))
                    {
                        case 1: if (dotForm) Dot<One>(jb, je, xg, yg); else Axpy<One>(jb, je, xg, yg); break;
                        case 2: if (dotForm) Dot<Two>(jb, je, xg, yg); else Axpy<Two>(jb, je, xg, yg); break;
                        case 3: if (dotForm) Dot<Three>(jb, je, xg, yg); else Axpy<Three>(jb, je, xg, yg); break;
                        default: if (dotForm) Dot<Four>(jb, je, xg, yg); else Axpy<Four>(jb, je, xg, yg); break;
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(float* dst, float value) => *dst = accumulate ? *dst + value : value;

        /// <summary>
        /// Dot form, rows j in [j0, j1): groups of 4 rows of w (as 2 x 2 when there are 3-4 vectors), then single rows.
        /// Chains: x_i · w_r for every i and r of the group, 8 floats of k per step; the k tail is scalar.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Dot<TX>(int j0, int j1, float* xg, float* yg) where TX : struct, ICount
        {
            int j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                if (TX.Value <= 2) DotBlock<TX, Four>(j, xg, yg);
                else
                {
                    DotBlock<TX, Two>(j, xg, yg);
                    DotBlock<TX, Two>(j + 2, xg, yg);
                }
            }
            for (; j < j1; j++) DotBlock<TX, One>(j, xg, yg);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void DotBlock<TX, TR>(int j, float* xg, float* yg) where TX : struct, ICount where TR : struct, ICount
        {
            int nx = TX.Value, nr = TR.Value;
            TW* w0 = w + j * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            float* x0 = xg, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
            Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            int p = 0, kk = k;
            // The next group's rows (contiguous after these when ldw = k), one step's worth of bytes per step, so they
            // are in cache when the group starts: with short rows (k of a few thousand) the hardware prefetchers see
            // many short streams and stop at every 4 KiB page, and the stream ran at half the read bandwidth (BF16, k = 768).
            // Past the end of w the hint is harmless: prefetches never fault.
            bool prefetch = Sse.IsSupported && nr > 1;
            byte* next = (byte*)(w0 + nr * ldw);
            int stepBytes = 8 * nr * sizeof(TW);
            for (; p + 8 <= kk; p += 8)
            {
                if (prefetch)
                {
                    byte* ahead = next + (nint)(p / 8) * stepBytes;
                    Sse.Prefetch0(ahead);
                    if (stepBytes > 64) Sse.Prefetch0(ahead + 64);
                }
                var v0 = GemmPacking.Load8(w0 + p);
                var v1 = nr > 1 ? GemmPacking.Load8(w1 + p) : default;
                var v2 = nr > 2 ? GemmPacking.Load8(w2 + p) : default;
                var v3 = nr > 2 ? GemmPacking.Load8(w3 + p) : default;
                Chains(nr, Vector256.Load(x0 + p), v0, v1, v2, v3, ref a00, ref a01, ref a02, ref a03);
                if (nx > 1) Chains(nr, Vector256.Load(x1 + p), v0, v1, v2, v3, ref a10, ref a11, ref a12, ref a13);
                if (nx > 2) Chains(nr, Vector256.Load(x2 + p), v0, v1, v2, v3, ref a20, ref a21, ref a22, ref a23);
                if (nx > 3) Chains(nr, Vector256.Load(x3 + p), v0, v1, v2, v3, ref a30, ref a31, ref a32, ref a33);
            }
            float* yj = yg + j * ysw;
            FinishRow(nr, yj, x0, w0, ldw, p, a00, a01, a02, a03);
            if (nx > 1) FinishRow(nr, yj + ysx, x1, w0, ldw, p, a10, a11, a12, a13);
            if (nx > 2) FinishRow(nr, yj + 2 * ysx, x2, w0, ldw, p, a20, a21, a22, a23);
            if (nx > 3) FinishRow(nr, yj + 3 * ysx, x3, w0, ldw, p, a30, a31, a32, a33);
        }

        /// <summary>One step of the chains of one x row: chain r += x · (row r of w); the JIT keeps them in registers.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Chains(int nr, Vector256<float> xv, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3,
            ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3)
        {
            c0 = Vector256.MultiplyAddEstimate(xv, v0, c0);
            if (nr > 1) c1 = Vector256.MultiplyAddEstimate(xv, v1, c1);
            if (nr > 2)
            {
                c2 = Vector256.MultiplyAddEstimate(xv, v2, c2);
                c3 = Vector256.MultiplyAddEstimate(xv, v3, c3);
            }
        }

        /// <summary>The <paramref name="nr"/> results of one x row: chain r belongs to row r of w.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void FinishRow(int nr, float* yi, float* xi, TW* w0, nint ld, int p,
            Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
        {
            Finish(yi, xi, w0, p, c0);
            if (nr > 1) Finish(yi + ysw, xi, w0 + ld, p, c1);
            if (nr > 2)
            {
                Finish(yi + 2 * ysw, xi, w0 + 2 * ld, p, c2);
                Finish(yi + 3 * ysw, xi, w0 + 3 * ld, p, c3);
            }
        }

        /// <summary>Horizontal sum of one chain plus the scalar k tail from <paramref name="p"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Finish(float* dst, float* xi, TW* wr, int p, Vector256<float> chain)
        {
            float s = Vector256.Sum(chain);
            for (; p < k; p++) s += xi[p] * GemmPacking.ToSingle(wr, p);
            Put(dst, s);
        }

        /// <summary>
        /// Axpy form, columns [j0, j1) in chunks of at most <see cref="MaxChunk"/>: acc_i += Σ_r x_i[p + r]·w[p + r, :]
        /// over R = 4 rows of w per pass (2 for 3-4 vectors), then the chunk goes to y.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Axpy<TX>(int j0, int j1, float* xg, float* yg) where TX : struct, ICount
        {
            int nx = TX.Value;
            int chunk = Math.Min(MaxChunk, j1 - j0);
            using var lease = GemmBuffers.Rent(GemmBuffers.Slot.A, (long)nx * chunk);
            float* acc = lease.Pointer;
            for (int jj = j0; jj < j1; jj += chunk)
            {
                int cw = Math.Min(chunk, j1 - jj);
                new Span<float>(acc, nx * chunk).Clear();
                int p = 0;
                if (nx <= 2)
                {
                    for (; p + 4 <= k; p += 4) AxpyBlock<TX, Four>(acc, chunk, cw, p, jj, xg);
                }
                for (; p + 2 <= k; p += 2) AxpyBlock<TX, Two>(acc, chunk, cw, p, jj, xg);
                for (; p < k; p++) AxpyBlock<TX, One>(acc, chunk, cw, p, jj, xg);
                for (int i = 0; i < nx; i++)
                {
                    float* a = acc + i * chunk, yi = yg + i * ysx + jj * ysw;
                    for (int v = 0; v < cw; v++) Put(yi + v * ysw, a[v]);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void AxpyBlock<TX, TR>(float* acc, int chunk, int cw, int p, int jj, float* xg) where TX : struct, ICount where TR : struct, ICount
        {
            int nx = TX.Value, nr = TR.Value;
            TW* w0 = w + p * ldw + jj, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            float* x0 = xg + p, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
            float* acc0 = acc, acc1 = acc0 + chunk, acc2 = acc1 + chunk, acc3 = acc2 + chunk;
            Vector256<float> b00 = Vector256.Create(x0[0]), b01 = nr > 1 ? Vector256.Create(x0[1]) : default;
            Vector256<float> b02 = nr > 2 ? Vector256.Create(x0[2]) : default, b03 = nr > 2 ? Vector256.Create(x0[3]) : default;
            Vector256<float> b10 = nx > 1 ? Vector256.Create(x1[0]) : default, b11 = nx > 1 && nr > 1 ? Vector256.Create(x1[1]) : default;
            Vector256<float> b12 = nx > 1 && nr > 2 ? Vector256.Create(x1[2]) : default, b13 = nx > 1 && nr > 2 ? Vector256.Create(x1[3]) : default;
            Vector256<float> b20 = nx > 2 ? Vector256.Create(x2[0]) : default, b21 = nx > 2 && nr > 1 ? Vector256.Create(x2[1]) : default;
            Vector256<float> b30 = nx > 3 ? Vector256.Create(x3[0]) : default, b31 = nx > 3 && nr > 1 ? Vector256.Create(x3[1]) : default;
            int v = 0;
            for (; v + 8 <= cw; v += 8)
            {
                var v0 = GemmPacking.Load8(w0 + v);
                var v1 = nr > 1 ? GemmPacking.Load8(w1 + v) : default;
                var v2 = nr > 2 ? GemmPacking.Load8(w2 + v) : default;
                var v3 = nr > 2 ? GemmPacking.Load8(w3 + v) : default;
                var s = Vector256.MultiplyAddEstimate(b00, v0, Vector256.Load(acc0 + v));
                if (nr > 1) s = Vector256.MultiplyAddEstimate(b01, v1, s);
                if (nr > 2) s = Vector256.MultiplyAddEstimate(b03, v3, Vector256.MultiplyAddEstimate(b02, v2, s));
                s.Store(acc0 + v);
                if (nx > 1)
                {
                    s = Vector256.MultiplyAddEstimate(b10, v0, Vector256.Load(acc1 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b11, v1, s);
                    if (nr > 2) s = Vector256.MultiplyAddEstimate(b13, v3, Vector256.MultiplyAddEstimate(b12, v2, s));
                    s.Store(acc1 + v);
                }
                if (nx > 2)
                {
                    s = Vector256.MultiplyAddEstimate(b20, v0, Vector256.Load(acc2 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b21, v1, s);
                    s.Store(acc2 + v);
                }
                if (nx > 3)
                {
                    s = Vector256.MultiplyAddEstimate(b30, v0, Vector256.Load(acc3 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b31, v1, s);
                    s.Store(acc3 + v);
                }
            }
            // Column tail (only at the end of the matrix: ranges are whole 16-column groups): same order, scalar.
            for (; v < cw; v++)
            {
                for (int i = 0; i < nx; i++)
                {
                    float* xi = x0 + i * ldx;
                    float s = acc[i * chunk + v];
                    for (int r = 0; r < nr; r++) s = MathF.FusedMultiplyAdd(xi[r], GemmPacking.ToSingle(w0 + r * ldw, v), s);
                    acc[i * chunk + v] = s;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void DotScalar(int j0, int j1)
        {
            for (int j = j0; j < j1; j++)
            {
                TW* wj = w + j * ldw;
                for (int i = 0; i < rows; i++)
                {
                    float* xi = x + i * ldx;
                    float s = 0;
                    for (int p = 0; p < k; p++) s += xi[p] * GemmPacking.ToSingle(wj, p);
                    Put(y + i * ysx + j * ysw, s);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void AxpyScalar(int j0, int j1)
        {
            for (int i = 0; i < rows; i++)
            {
                float* xi = x + i * ldx;
                for (int j = j0; j < j1; j++) Put(y + i * ysx + j * ysw, 0);
                for (int p = 0; p < k; p++)
                {
                    TW* wp = w + p * ldw;
                    float xv = xi[p];
                    for (int j = j0; j < j1; j++) y[i * ysx + j * ysw] += xv * GemmPacking.ToSingle(wp, j);
                }
            }
        }
    }
}
