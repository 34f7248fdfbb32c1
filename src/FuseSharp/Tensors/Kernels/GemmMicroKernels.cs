using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// A register-blocked GEMM micro-kernel: <c>C[MR, NR] (+)= Ap[kc, MR]ᵀ · Bp[kc, NR]</c>, where Ap is a packed A panel
/// (<c>Ap[p * MR + i] = A[i, p]</c>) and Bp a packed B panel (<c>Bp[p * NR + j] = B[p, j]</c>). Each step p broadcasts
/// MR values of A and multiplies them by NR/width vectors of B into MR x NR/width accumulators that never leave
/// registers; C is read (when accumulating) and written once per call. The sizes of the cache blocks around it
/// are part of the kernel because they follow from MR and NR.
/// </summary>
internal unsafe interface IGemmMicroKernel
{
    /// <summary>Rows of C per call (broadcast values of A per step).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of C per call (floats of B per step).</summary>
    static abstract int NR { get; }

    /// <summary>Largest k block: the B micro-panel (KC x NR floats) stays in L1 while MC/MR A micro-panels stream past it.</summary>
    static abstract int KC { get; }

    /// <summary>Largest m block: the packed A block (MC x KC floats) stays in L2.</summary>
    static abstract int MC { get; }

    /// <summary><c>C (+)= Apᵀ·Bp</c> over <paramref name="kc"/> steps; C rows are <paramref name="ldc"/> floats apart.</summary>
    static abstract void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate);
}

/// <summary>
/// 12 x 32 with Vector512 (AVX-512: 32 zmm registers): 24 accumulators + 2 B vectors + 1 broadcast = 27 live
/// registers, 24 FMAs per 2 loads and 12 broadcasts. KC = 192 keeps the 24 KiB B micro-panel in a 32-48 KiB L1d.
/// </summary>
internal readonly unsafe struct GemmKernel512 : IGemmMicroKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int KC => 192;
    public static int MC => 144;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        for (; kc > 0; kc--)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var x = Vector512.Create(a[0]);
            c00 = Vector512.MultiplyAddEstimate(x, b0, c00); c01 = Vector512.MultiplyAddEstimate(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Vector512.MultiplyAddEstimate(x, b0, c10); c11 = Vector512.MultiplyAddEstimate(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Vector512.MultiplyAddEstimate(x, b0, c20); c21 = Vector512.MultiplyAddEstimate(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Vector512.MultiplyAddEstimate(x, b0, c30); c31 = Vector512.MultiplyAddEstimate(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Vector512.MultiplyAddEstimate(x, b0, c40); c41 = Vector512.MultiplyAddEstimate(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Vector512.MultiplyAddEstimate(x, b0, c50); c51 = Vector512.MultiplyAddEstimate(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Vector512.MultiplyAddEstimate(x, b0, c60); c61 = Vector512.MultiplyAddEstimate(x, b1, c61);
            x = Vector512.Create(a[7]);
            c70 = Vector512.MultiplyAddEstimate(x, b0, c70); c71 = Vector512.MultiplyAddEstimate(x, b1, c71);
            x = Vector512.Create(a[8]);
            c80 = Vector512.MultiplyAddEstimate(x, b0, c80); c81 = Vector512.MultiplyAddEstimate(x, b1, c81);
            x = Vector512.Create(a[9]);
            c90 = Vector512.MultiplyAddEstimate(x, b0, c90); c91 = Vector512.MultiplyAddEstimate(x, b1, c91);
            x = Vector512.Create(a[10]);
            cA0 = Vector512.MultiplyAddEstimate(x, b0, cA0); cA1 = Vector512.MultiplyAddEstimate(x, b1, cA1);
            x = Vector512.Create(a[11]);
            cB0 = Vector512.MultiplyAddEstimate(x, b0, cB0); cB1 = Vector512.MultiplyAddEstimate(x, b1, cB1);
            a += 12;
            b += 32;
        }
        Store(c, accumulate, c00, c01); c += ldc;
        Store(c, accumulate, c10, c11); c += ldc;
        Store(c, accumulate, c20, c21); c += ldc;
        Store(c, accumulate, c30, c31); c += ldc;
        Store(c, accumulate, c40, c41); c += ldc;
        Store(c, accumulate, c50, c51); c += ldc;
        Store(c, accumulate, c60, c61); c += ldc;
        Store(c, accumulate, c70, c71); c += ldc;
        Store(c, accumulate, c80, c81); c += ldc;
        Store(c, accumulate, c90, c91); c += ldc;
        Store(c, accumulate, cA0, cA1); c += ldc;
        Store(c, accumulate, cB0, cB1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, bool accumulate, Vector512<float> v0, Vector512<float> v1)
    {
        if (accumulate)
        {
            v0 += Vector512.Load(c);
            v1 += Vector512.Load(c + 16);
        }
        v0.Store(c);
        v1.Store(c + 16);
    }
}

/// <summary>
/// 6 x 16 with Vector256 (AVX2 + FMA: 16 ymm registers): 12 accumulators + 2 B vectors + 1 broadcast = 15 live
/// registers, the BLIS Haswell/Zen shape; 12 FMAs per 2 loads and 6 broadcasts, so the two FMA pipes stay busy.
/// KC = 256 keeps the 16 KiB B micro-panel in a 32 KiB L1d; MC = 144 keeps the 144 KiB A block in a 512 KiB L2.
/// </summary>
internal readonly unsafe struct GemmKernel256 : IGemmMicroKernel
{
    public static int MR => 6;
    public static int NR => 16;
    public static int KC => 256;
    public static int MC => 144;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (; kc > 0; kc--)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]);
            c00 = Vector256.MultiplyAddEstimate(x, b0, c00); c01 = Vector256.MultiplyAddEstimate(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Vector256.MultiplyAddEstimate(x, b0, c10); c11 = Vector256.MultiplyAddEstimate(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Vector256.MultiplyAddEstimate(x, b0, c20); c21 = Vector256.MultiplyAddEstimate(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Vector256.MultiplyAddEstimate(x, b0, c30); c31 = Vector256.MultiplyAddEstimate(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Vector256.MultiplyAddEstimate(x, b0, c40); c41 = Vector256.MultiplyAddEstimate(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Vector256.MultiplyAddEstimate(x, b0, c50); c51 = Vector256.MultiplyAddEstimate(x, b1, c51);
            a += 6;
            b += 16;
        }
        Store(c, accumulate, c00, c01); c += ldc;
        Store(c, accumulate, c10, c11); c += ldc;
        Store(c, accumulate, c20, c21); c += ldc;
        Store(c, accumulate, c30, c31); c += ldc;
        Store(c, accumulate, c40, c41); c += ldc;
        Store(c, accumulate, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, bool accumulate, Vector256<float> v0, Vector256<float> v1)
    {
        if (accumulate)
        {
            v0 += Vector256.Load(c);
            v1 += Vector256.Load(c + 8);
        }
        v0.Store(c);
        v1.Store(c + 8);
    }
}

/// <summary>4 x 4 scalar kernel (16 accumulators) for machines without 256-bit SIMD; also the baseline the tests pin down.</summary>
internal readonly unsafe struct GemmKernelScalar : IGemmMicroKernel
{
    public static int MR => 4;
    public static int NR => 4;
    public static int KC => 256;
    public static int MC => 64;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(nint kc, float* a, float* b, float* c, nint ldc, bool accumulate)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (; kc > 0; kc--)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float x = a[0];
            c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
            x = a[1];
            c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
            x = a[2];
            c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
            x = a[3];
            c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
            a += 4;
            b += 4;
        }
        Store(c, accumulate, c00, c01, c02, c03); c += ldc;
        Store(c, accumulate, c10, c11, c12, c13); c += ldc;
        Store(c, accumulate, c20, c21, c22, c23); c += ldc;
        Store(c, accumulate, c30, c31, c32, c33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, bool accumulate, float v0, float v1, float v2, float v3)
    {
        if (accumulate)
        {
            v0 += c[0]; v1 += c[1]; v2 += c[2]; v3 += c[3];
        }
        c[0] = v0; c[1] = v1; c[2] = v2; c[3] = v3;
    }
}
