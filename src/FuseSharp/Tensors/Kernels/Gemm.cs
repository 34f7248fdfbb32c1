using System.Numerics.Tensors;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Single-precision matrix multiply, row-major (PyTorch order), FP32 accumulate:
/// <c>C[m, n] (+)= Σ_k op(A)[m, k] · op(B)[k, n]</c>, where <c>op(A)</c> is A <c>[M, K]</c> (leading dimension
/// <c>lda</c>) or, with <c>transA</c>, A stored as <c>[K, M]</c>; likewise B is <c>[K, N]</c> or, with
/// <c>transB</c>, stored <c>[N, K]</c> (a Linear layer's weight). The three products of a linear layer:
/// forward <c>y = x·Wᵀ</c> (transB), input gradient <c>dx = dy·W</c>, weight gradient <c>dW += dyᵀ·x</c> (transA).
/// The BF16 overload reads B as BF16 straight from (memory-mapped) storage.
/// Uses up to <see cref="Parallelism.MaxThreads"/> threads.
/// </summary>
public static class Gemm
{
    /// <summary>C (+)= op(A)·op(B) with B in F32.</summary>
    public static void MatMul(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        unsafe
        {
            fixed (float* pa = a, pb = b, pc = c)
            {
                float* A = pa, B = pb, C = pc;
                Run(m, row => RowF32(transA, transB, n, k, A, lda, B, ldb, C + (long)row * ldc, row, accumulate));
            }
        }
    }

    /// <summary>C (+)= op(A)·op(B) with B stored as BF16 (raw bits).</summary>
    public static void MatMulBf16(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<ushort> b, int ldb, Span<float> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        unsafe
        {
            fixed (float* pa = a, pc = c)
            fixed (ushort* pb = b)
            {
                float* A = pa, C = pc;
                ushort* B = pb;
                Run(m, row =>
                {
                    // Widen the needed B values row by row; a placeholder until the blocked kernel lands.
                    var tmp = new float[transB ? k : n];
                    var acc = new float[n];
                    float* crow = C + (long)row * ldc;
                    for (int p = 0; p < (transB ? n : k); p++)
                    {
                        BFloat16Conversion.ToSingle(new ReadOnlySpan<ushort>(B + (long)p * ldb, tmp.Length), tmp);
                        if (transB)
                        {
                            float s = 0;
                            for (int q = 0; q < k; q++) s += A[transA ? (long)q * lda + row : (long)row * lda + q] * tmp[q];
                            acc[p] = s;
                        }
                        else
                        {
                            float av = A[transA ? (long)p * lda + row : (long)row * lda + p];
                            TensorPrimitives.MultiplyAdd(tmp, av, acc, acc);
                        }
                    }
                    for (int j = 0; j < n; j++) crow[j] = accumulate ? crow[j] + acc[j] : acc[j];
                });
            }
        }
    }

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

    private static unsafe void RowF32(bool transA, bool transB, int n, int k, float* A, int lda, float* B, int ldb, float* crow, int row, bool accumulate)
    {
        var c = new Span<float>(crow, n);
        if (!accumulate) c.Clear();
        if (transB && !transA)
        {
            var x = new ReadOnlySpan<float>(A + (long)row * lda, k);
            for (int j = 0; j < n; j++) c[j] += TensorPrimitives.Dot(x, new ReadOnlySpan<float>(B + (long)j * ldb, k));
            return;
        }
        for (int p = 0; p < k; p++)
        {
            float av = A[transA ? (long)p * lda + row : (long)row * lda + p];
            if (av == 0) continue;
            if (!transB) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(B + (long)p * ldb, n), av, c, c);
            else for (int j = 0; j < n; j++) c[j] += av * B[(long)j * ldb + p];
        }
    }

    private static void Run(int m, Action<int> row)
    {
        if (m == 1 || Parallelism.MaxThreads == 1) { for (int i = 0; i < m; i++) row(i); return; }
        Parallel.For(0, m, Parallelism.Options, row);
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
