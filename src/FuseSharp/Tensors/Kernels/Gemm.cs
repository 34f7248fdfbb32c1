using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Single-precision matrix multiply, row-major (PyTorch order), FP32 accumulate:
/// <c>C[m, n] (+)= Σ_k op(A)[m, k] · op(B)[k, n]</c>, where <c>op(A)</c> is A <c>[M, K]</c> (leading dimension
/// <c>lda</c>) or, with <c>transA</c>, A stored as <c>[K, M]</c>; likewise B is <c>[K, N]</c> or, with
/// <c>transB</c>, stored <c>[N, K]</c> (a Linear layer's weight). The three products of a linear layer:
/// forward <c>y = x·Wᵀ</c> (transB), input gradient <c>dx = dy·W</c>, weight gradient <c>dW += dyᵀ·x</c> (transA).
/// The BF16 overload reads B as BF16 straight from (memory-mapped) storage and widens it while packing.
/// Uses up to <see cref="Parallelism.MaxThreads"/> threads.
/// </summary>
/// <remarks>
/// Without <c>accumulate</c>, C is overwritten (its old contents, NaN included, never leak in); with
/// <c>accumulate</c> the product is added to C. <c>k = 0</c> gives <c>C = 0</c> (or leaves C unchanged when
/// accumulating). Paths: 1 to 8 rows (or columns) of C take the streaming matrix-vector path
/// (memory bound); everything else the cache-blocked, packed, register-blocked path (compute bound) with
/// a 6-row micro-kernel two registers wide: Vector512 (6 x 32), Vector256 (6 x 16) or scalar (6 x 2), the widest
/// the hardware accelerates.
/// Summation order differs from <see cref="MatMulReference"/>; results agree within the FP32 rounding bound
/// <c>|ΔC| ≤ (K + 2)·2⁻²⁴·Σ|a·b|</c>, and do not depend on the thread count.
/// </remarks>
public static class Gemm
{
    /// <summary>C (+)= op(A)·op(B) with B in F32.</summary>
    /// <exception cref="ArgumentException">A leading dimension below its row length, or a span too short for its matrix.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A negative dimension.</exception>
    public static void MatMul(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false) =>
        MatMul(BestKernel, Parallelism.MaxThreads, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>C (+)= op(A)·op(B) with B stored as BF16 (raw bits).</summary>
    /// <exception cref="ArgumentException">A leading dimension below its row length, or a span too short for its matrix.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A negative dimension.</exception>
    public static void MatMulBf16(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<ushort> b, int ldb, Span<float> c, int ldc, bool accumulate = false) =>
        MatMul(BestKernel, Parallelism.MaxThreads, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>The scalar reference (llm.c's <c>matmul_forward_naive</c>): what every fast path is tested against.</summary>
    public static void MatMulReference(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)a[transA ? p * lda + i : i * lda + p] * b[transB ? j * ldb + p : p * ldb + j];
                c[i * ldc + j] = (float)(accumulate ? c[i * ldc + j] + s : s);
            }
        }
    }

    /// <summary>Micro-kernel families; the blocked path picks one, the tests run each.</summary>
    internal enum Kernel { Scalar, Vector256, Vector512 }

    /// <summary>The widest micro-kernel this machine accelerates.</summary>
    internal static Kernel BestKernel =>
        Vector512.IsHardwareAccelerated ? Kernel.Vector512 : Vector256.IsHardwareAccelerated ? Kernel.Vector256 : Kernel.Scalar;

    /// <summary>
    /// The implementation behind both public overloads, with the kernel family and thread count explicit (tests and
    /// benchmarks pin them). <typeparamref name="TB"/> is <see cref="float"/> or <see cref="ushort"/> (BF16 bits).
    /// Products with at most <paramref name="vectorRows"/> rows (or columns) take the matrix-vector path (0: never);
    /// <paramref name="slabFloats"/> caps the packed B slab (small values force several slabs); <paramref name="bufferC"/>
    /// false sends the partial sums of every k block straight to C (the tests compare both); <paramref name="packedAFloats"/>
    /// caps op(A) packed once for the whole call (0: every work item packs its own A blocks).
    /// </summary>
    internal static unsafe void MatMul<TB>(Kernel kernel, int threads, bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<TB> b, int ldb, Span<float> c, int ldc, bool accumulate,
        int vectorRows = GemmVector.MaxRows, long slabFloats = GemmBlocked.SlabFloats, bool bufferC = true,
        long packedAFloats = GemmBlocked.PackedAFloats)
        where TB : unmanaged
    {
        if (typeof(TB) != typeof(float) && typeof(TB) != typeof(ushort)) throw new NotSupportedException($"B of type {typeof(TB).Name}");
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        threads = Math.Max(1, threads);
        fixed (float* pa = a, pc = c)
        fixed (TB* pb = b)
        {
            var x = new GemmArgs<TB>(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
            if (k == 0)
            {
                if (!accumulate) for (int i = 0; i < m; i++) new Span<float>(pc + (nint)i * ldc, n).Clear();
            }
            else if (m <= vectorRows || n <= vectorRows)
            {
                MatVec(kernel != Kernel.Scalar && Vector256.IsHardwareAccelerated, threads, x, vectorRows);
            }
            else
            {
                bool simd = kernel != Kernel.Scalar;
                switch (kernel)
                {
                    case Kernel.Vector512: GemmBlocked.Run<GemmKernel<Lanes512, Vector512<float>>, TB>(x, threads, simd, slabFloats, bufferC, packedAFloats); break;
                    case Kernel.Vector256: GemmBlocked.Run<GemmKernel<Lanes256, Vector256<float>>, TB>(x, threads, simd, slabFloats, bufferC, packedAFloats); break;
                    default: GemmBlocked.Run<GemmKernel<Lanes1, float>, TB>(x, threads, simd, slabFloats, bufferC, packedAFloats); break;
                }
            }
        }
    }

    /// <summary>
    /// Few rows (at most <see cref="GemmVector.MaxRows"/> by default): the rows of op(A) are the vectors and op(B) the streamed matrix (dot form when B is [N, K]).
    /// Few columns: the same with the roles swapped, Cᵀ = op(B)ᵀ·op(A)ᵀ, op(A) streamed. Vectors that are not
    /// contiguous F32 rows (a column of a stored matrix, or BF16) are gathered first (rows x K floats).
    /// </summary>
    private static unsafe void MatVec<TB>(bool simd, int threads, in GemmArgs<TB> x, int vectorRows) where TB : unmanaged
    {
        int k = x.K;
        if (x.M <= vectorRows)
        {
            int rows = x.M;
            using var gathered = GemmBuffers.Rent(GemmBuffers.Slot.Vector, x.TransA ? (long)rows * k : 0);
            float* v = x.A;
            nint ldv = x.Lda;
            if (x.TransA)
            {
                v = gathered.Pointer;
                ldv = k;
                for (int p = 0; p < k; p++)
                    for (int i = 0; i < rows; i++) v[i * ldv + p] = x.A[p * x.Lda + i];
            }
            GemmVector.Run(threads, simd, rows, x.N, k, v, ldv, x.B, x.Ldb, x.TransB, x.C, x.Ldc, 1, x.Accumulate);
        }
        else
        {
            int rows = x.N;
            bool direct = typeof(TB) == typeof(float) && x.TransB;
            using var gathered = GemmBuffers.Rent(GemmBuffers.Slot.Vector, direct ? 0 : (long)rows * k);
            float* v = (float*)x.B;
            nint ldv = x.Ldb;
            if (!direct)
            {
                v = gathered.Pointer;
                ldv = k;
                for (int p = 0; p < k; p++)
                    for (int j = 0; j < rows; j++)
                        v[j * ldv + p] = GemmPacking.ToSingle(x.B, x.TransB ? j * x.Ldb + p : p * x.Ldb + j);
            }
            GemmVector.Run(threads, simd, rows, x.M, k, v, ldv, x.A, x.Lda, !x.TransA, x.C, 1, x.Ldc, x.Accumulate);
        }
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k, long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), "negative matrix dimension");
        int aCols = transA ? m : k, aRows = transA ? k : m;
        int bCols = transB ? k : n, bRows = transB ? n : k;
        if (lda < aCols || ldb < bCols || ldc < n) throw new ArgumentException("leading dimension smaller than the row length");
        if (aRows > 0 && (long)(aRows - 1) * lda + aCols > aLen) throw new ArgumentException($"A holds {aLen} values, too few for [{aRows}, {aCols}] with lda {lda}");
        if (bRows > 0 && (long)(bRows - 1) * ldb + bCols > bLen) throw new ArgumentException($"B holds {bLen} values, too few for [{bRows}, {bCols}] with ldb {ldb}");
        if (m > 0 && (long)(m - 1) * ldc + n > cLen) throw new ArgumentException($"C holds {cLen} values, too few for [{m}, {n}] with ldc {ldc}");
    }
}
