using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Matrix times a few vectors (decoding: 1 to 4 rows), where the matrix is read once and the run time is the time
/// to stream it from memory; packing would read it twice. Computes, for <c>i &lt; rows ≤ 4</c> and <c>j &lt; cols</c>:
/// <c>y(i, j) (+)= Σ_p x[i * ldx + p] · w(j, p)</c>, with <c>y(i, j)</c> at <c>y[i * ysx + j * ysw]</c> and
/// <list type="bullet">
/// <item>dot form, <c>w(j, p) = w[j * ldw + p]</c> (a Linear weight [N, K]): 4 rows of w against one x at a time,
/// 4 independent FMA chains; the x rows and the 4 w rows stay in L1/L2 while the other x rows reuse them;</item>
/// <item>axpy form, <c>w(j, p) = w[p * ldw + j]</c>: per chunk of 512 columns, y accumulates in an L1 stack buffer
/// while 4 rows of w at a time stream past.</item>
/// </list>
/// Threads split the columns j (whole cache lines in the axpy form). Vector256 is enough to saturate memory
/// bandwidth even where Vector512 exists; the scalar form is the fallback without 256-bit SIMD.
/// </summary>
internal static unsafe class GemmVector
{
    public const int MaxRows = 4;

    /// <summary>Columns per axpy chunk: the y accumulators (4 x 512 floats = 8 KiB) stay in L1.</summary>
    private const int Chunk = 512;

    /// <summary>Matrix values per thread below which one more thread costs more than it saves.</summary>
    private const long ValuesPerThread = 1L << 16;

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

    private sealed class Job<TW>(bool simd, int rows, int cols, int k, float* x, nint ldx, TW* w, nint ldw, bool dotForm,
        float* y, nint ysx, nint ysw, bool accumulate, int threads, int unit) where TW : unmanaged
    {
        public void Part(int t)
        {
            int units = (cols + unit - 1) / unit;
            int j0 = (int)((long)units * t / threads) * unit, j1 = Math.Min(cols, (int)((long)units * (t + 1) / threads) * unit);
            if (dotForm) Dot(j0, j1);
            else Axpy(j0, j1);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Dot(int j0, int j1)
        {
            int j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                TW* wj = w + j * ldw;
                for (int i = 0; i < rows; i++)
                {
                    Dot4(x + i * ldx, wj, ldw, out float s0, out float s1, out float s2, out float s3);
                    float* yi = y + i * ysx + j * ysw;
                    Put(yi, s0);
                    Put(yi + ysw, s1);
                    Put(yi + 2 * ysw, s2);
                    Put(yi + 3 * ysw, s3);
                }
            }
            for (; j < j1; j++)
                for (int i = 0; i < rows; i++) Put(y + i * ysx + j * ysw, Dot1(x + i * ldx, w + j * ldw));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(float* dst, float value) => *dst = accumulate ? *dst + value : value;

        private void Dot4(float* xi, TW* w0, nint ld, out float s0, out float s1, out float s2, out float s3)
        {
            TW* w1 = w0 + ld, w2 = w1 + ld, w3 = w2 + ld;
            int p = 0;
            s0 = s1 = s2 = s3 = 0;
            if (simd)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; p + 8 <= k; p += 8)
                {
                    var xv = Vector256.Load(xi + p);
                    a0 = Vector256.MultiplyAddEstimate(xv, GemmPacking.Load8(w0 + p), a0);
                    a1 = Vector256.MultiplyAddEstimate(xv, GemmPacking.Load8(w1 + p), a1);
                    a2 = Vector256.MultiplyAddEstimate(xv, GemmPacking.Load8(w2 + p), a2);
                    a3 = Vector256.MultiplyAddEstimate(xv, GemmPacking.Load8(w3 + p), a3);
                }
                s0 = Vector256.Sum(a0);
                s1 = Vector256.Sum(a1);
                s2 = Vector256.Sum(a2);
                s3 = Vector256.Sum(a3);
            }
            for (; p < k; p++)
            {
                float xv = xi[p];
                s0 += xv * GemmPacking.ToSingle(w0, p);
                s1 += xv * GemmPacking.ToSingle(w1, p);
                s2 += xv * GemmPacking.ToSingle(w2, p);
                s3 += xv * GemmPacking.ToSingle(w3, p);
            }
        }

        private float Dot1(float* xi, TW* w0)
        {
            int p = 0;
            float s = 0;
            if (simd)
            {
                Vector256<float> a0 = default, a1 = default;
                for (; p + 16 <= k; p += 16)
                {
                    a0 = Vector256.MultiplyAddEstimate(Vector256.Load(xi + p), GemmPacking.Load8(w0 + p), a0);
                    a1 = Vector256.MultiplyAddEstimate(Vector256.Load(xi + p + 8), GemmPacking.Load8(w0 + p + 8), a1);
                }
                for (; p + 8 <= k; p += 8) a0 = Vector256.MultiplyAddEstimate(Vector256.Load(xi + p), GemmPacking.Load8(w0 + p), a0);
                s = Vector256.Sum(a0 + a1);
            }
            for (; p < k; p++) s += xi[p] * GemmPacking.ToSingle(w0, p);
            return s;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Axpy(int j0, int j1)
        {
            float* acc = stackalloc float[MaxRows * Chunk];
            for (int jj = j0; jj < j1; jj += Chunk)
            {
                int cw = Math.Min(Chunk, j1 - jj);
                new Span<float>(acc, MaxRows * Chunk).Clear();
                int p = 0;
                for (; p + 4 <= k; p += 4)
                {
                    TW* w0 = w + p * ldw + jj;
                    for (int i = 0; i < rows; i++)
                    {
                        float* xi = x + i * ldx + p;
                        Axpy4(acc + i * Chunk, cw, xi[0], xi[1], xi[2], xi[3], w0, ldw);
                    }
                }
                for (; p < k; p++)
                {
                    TW* w0 = w + p * ldw + jj;
                    for (int i = 0; i < rows; i++)
                    {
                        float xv = x[i * ldx + p];
                        float* a = acc + i * Chunk;
                        for (int v = 0; v < cw; v++) a[v] += xv * GemmPacking.ToSingle(w0, v);
                    }
                }
                for (int i = 0; i < rows; i++)
                {
                    float* a = acc + i * Chunk, yi = y + i * ysx + jj * ysw;
                    for (int v = 0; v < cw; v++) Put(yi + v * ysw, a[v]);
                }
            }
        }

        /// <summary><c>a[v] += x0·w0[v] + x1·w1[v] + x2·w2[v] + x3·w3[v]</c> for v &lt; cw, rows of w ld apart.</summary>
        private void Axpy4(float* a, int cw, float x0, float x1, float x2, float x3, TW* w0, nint ld)
        {
            TW* w1 = w0 + ld, w2 = w1 + ld, w3 = w2 + ld;
            int v = 0;
            if (simd)
            {
                Vector256<float> b0 = Vector256.Create(x0), b1 = Vector256.Create(x1), b2 = Vector256.Create(x2), b3 = Vector256.Create(x3);
                for (; v + 8 <= cw; v += 8)
                {
                    var s = Vector256.MultiplyAddEstimate(b0, GemmPacking.Load8(w0 + v), Vector256.Load(a + v));
                    s = Vector256.MultiplyAddEstimate(b1, GemmPacking.Load8(w1 + v), s);
                    s = Vector256.MultiplyAddEstimate(b2, GemmPacking.Load8(w2 + v), s);
                    s = Vector256.MultiplyAddEstimate(b3, GemmPacking.Load8(w3 + v), s);
                    s.Store(a + v);
                }
            }
            for (; v < cw; v++)
                a[v] += x0 * GemmPacking.ToSingle(w0, v) + x1 * GemmPacking.ToSingle(w1, v) + x2 * GemmPacking.ToSingle(w2, v) + x3 * GemmPacking.ToSingle(w3, v);
        }
    }
}
