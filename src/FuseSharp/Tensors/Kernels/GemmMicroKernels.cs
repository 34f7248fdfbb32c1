using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// A register-blocked GEMM micro-kernel: <c>C[MR, NR] (+)= Ap[kc, MR]ᵀ · Bp[kc, NR]</c>, where Ap is a packed A panel
/// (<c>Ap[p * MR + i] = A[i, p]</c>) and Bp a packed B panel (<c>Bp[p * NR + j] = B[p, j]</c>). The sizes of the cache
/// blocks around it are part of the kernel because they follow from MR and NR.
/// </summary>
internal unsafe interface IGemmMicroKernel
{
    /// <summary>Rows of C per call (broadcast values of A per step).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of C per call (floats of B per step).</summary>
    static abstract int NR { get; }

    /// <summary>Largest k block: the B micro-panel (KC x NR floats) stays in L1 while MC/MR A micro-panels stream past it.</summary>
    static abstract int KC { get; }

    /// <summary>Largest m block (a multiple of MR): the packed A block (MC x KC floats) stays in L2.</summary>
    static abstract int MC { get; }

    /// <summary>
    /// <c>C = Apᵀ·Bp + Cin</c> over <paramref name="kc"/> steps (<c>Cin</c> = 0 when <paramref name="cIn"/> is null; it
    /// may be C itself). Rows are <paramref name="ldIn"/> and <paramref name="ldc"/> floats apart.
    /// </summary>
    static abstract void Run(nint kc, float* a, float* b, float* cIn, nint ldIn, float* c, nint ldc);
}

/// <summary>
/// The arithmetic of one register width, TensorPrimitives-style: the micro-kernel is written once over these and
/// the JIT specialises it per width (struct type arguments), inlining every call.
/// </summary>
internal unsafe interface IGemmLanes<TVec> where TVec : unmanaged
{
    /// <summary>Floats per register.</summary>
    static abstract int Lanes { get; }

    /// <summary>Largest k block for a 2-register-wide B panel: that panel (KC x 2·Lanes floats) uses 16-24 KiB of L1.</summary>
    static abstract int KC { get; }

    static abstract TVec Load(float* p);
    static abstract void Store(TVec value, float* p);
    static abstract TVec Broadcast(float value);
    static abstract TVec MultiplyAdd(TVec a, TVec b, TVec addend);
    static abstract TVec Add(TVec a, TVec b);
}

/// <summary>Vector512 (AVX-512: 32 zmm registers; the kernel needs 15). KC = 192: a 24 KiB B micro-panel.</summary>
internal readonly unsafe struct Lanes512 : IGemmLanes<Vector512<float>>
{
    public static int Lanes => 16;
    public static int KC => 192;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> value, float* p) => value.Store(p);
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> addend) => Vector512.MultiplyAddEstimate(a, b, addend);
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
}

/// <summary>Vector256 (AVX2 + FMA: 16 ymm registers; the kernel needs all but one). KC = 256: a 16 KiB B micro-panel.</summary>
internal readonly unsafe struct Lanes256 : IGemmLanes<Vector256<float>>
{
    public static int Lanes => 8;
    public static int KC => 256;
    public static Vector256<float> Load(float* p) => Vector256.Load(p);
    public static void Store(Vector256<float> value, float* p) => value.Store(p);
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> addend) => Vector256.MultiplyAddEstimate(a, b, addend);
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
}

/// <summary>Plain floats: the fallback without 256-bit SIMD (a 6 x 2 tile), and the baseline the tests pin down.</summary>
internal readonly unsafe struct Lanes1 : IGemmLanes<float>
{
    public static int Lanes => 1;
    public static int KC => 256;
    public static float Load(float* p) => *p;
    public static void Store(float value, float* p) => *p = value;
    public static float Broadcast(float value) => value;
    public static float MultiplyAdd(float a, float b, float addend) => a * b + addend;
    public static float Add(float a, float b) => a + b;
}

/// <summary>
/// 6 rows x 2 registers (6 x 16 for Vector256, the BLIS Haswell/Zen shape; 6 x 32 for Vector512; 6 x 2 scalar):
/// 12 accumulators + 2 B registers + 1 broadcast. Each step loads 2 B registers and broadcasts 6 A values for 12
/// FMAs: 12 independent chains cover the FMA latency x pipes (4 x 2) of current cores, and 0.67 loads per FMA
/// stay under the load ports' rate, so the kernel is FMA-bound at either width. MC = 144 keeps the A block
/// (144 x KC floats, 108-144 KiB) in L2.
/// </summary>
internal readonly unsafe struct GemmKernel<TL, TVec> : IGemmMicroKernel
    where TL : struct, IGemmLanes<TVec> where TVec : unmanaged
{
    public static int MR => 6;
    public static int NR => 2 * TL.Lanes;
    public static int KC => TL.KC;
    public static int MC => 144;

    // Never inlined: compiled on its own, the 15 live registers are all the allocator has to place (and a call per
    // tile of 6 x NR x KC FMAs costs nothing).
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Run(nint kc, float* a, float* b, float* cIn, nint ldIn, float* c, nint ldc)
    {
        int lanes = TL.Lanes;
        bool accumulate = cIn != null;
        if (Sse.IsSupported)
        {
            // Start fetching the C tile now (as BLIS kernels do): its rows are ldc apart (a new page each, invisible
            // to the hardware prefetchers) and, once the C block outgrows L2, every row would otherwise miss when the
            // loop ends (measured on Zen 3: +5% at N = 2048). The same for the tile added in, when it is another.
            float* row = c;
            for (int i = 0; i < 6; i++, row += ldc)
            {
                Sse.Prefetch0(row);
                Sse.Prefetch0(row + 2 * lanes - 1);
            }
            row = cIn;
            if (accumulate && cIn != c)
            {
                for (int i = 0; i < 6; i++, row += ldIn)
                {
                    Sse.Prefetch0(row);
                    Sse.Prefetch0(row + 2 * lanes - 1);
                }
            }
        }
        TVec c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        TVec c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        // Four steps per iteration: fewer loop-control and address instructions among the FMAs. Measured on Zen 3 (2 vCPUs,
        // shared, load 15-20), two and four steps alternated in one process: the kernel's median rate per thread-CPU second
        // over panels in L1/L2 +2-5% (two steps were +2% over one); the forward GEMM (M = 512, K = N 512-4096, 6 rounds)
        // +2-5% FLOP per CPU second on 1 thread, +4-8% on 2. The same FMAs per accumulator in the same order: the same bits.
        for (; kc >= 4; kc -= 4)
        {
            Step(a, b, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
            Step(a + 6, b + 2 * lanes, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
            Step(a + 12, b + 4 * lanes, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
            Step(a + 18, b + 6 * lanes, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
            a += 24;
            b += 8 * lanes;
        }
        for (; kc > 0; kc--, a += 6, b += 2 * lanes)
            Step(a, b, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
        // (cIn advances also when null: it is then never read.)
        Store(c, cIn, accumulate, c00, c01); c += ldc; cIn += ldIn;
        Store(c, cIn, accumulate, c10, c11); c += ldc; cIn += ldIn;
        Store(c, cIn, accumulate, c20, c21); c += ldc; cIn += ldIn;
        Store(c, cIn, accumulate, c30, c31); c += ldc; cIn += ldIn;
        Store(c, cIn, accumulate, c40, c41); c += ldc; cIn += ldIn;
        Store(c, cIn, accumulate, c50, c51);
    }

    /// <summary>One k step: 2 B registers times 6 broadcast A values into the 12 accumulators (inlined: they stay in registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(float* a, float* b, ref TVec c00, ref TVec c01, ref TVec c10, ref TVec c11, ref TVec c20, ref TVec c21,
        ref TVec c30, ref TVec c31, ref TVec c40, ref TVec c41, ref TVec c50, ref TVec c51)
    {
        var b0 = TL.Load(b);
        var b1 = TL.Load(b + TL.Lanes);
        var x = TL.Broadcast(a[0]);
        c00 = TL.MultiplyAdd(x, b0, c00); c01 = TL.MultiplyAdd(x, b1, c01);
        x = TL.Broadcast(a[1]);
        c10 = TL.MultiplyAdd(x, b0, c10); c11 = TL.MultiplyAdd(x, b1, c11);
        x = TL.Broadcast(a[2]);
        c20 = TL.MultiplyAdd(x, b0, c20); c21 = TL.MultiplyAdd(x, b1, c21);
        x = TL.Broadcast(a[3]);
        c30 = TL.MultiplyAdd(x, b0, c30); c31 = TL.MultiplyAdd(x, b1, c31);
        x = TL.Broadcast(a[4]);
        c40 = TL.MultiplyAdd(x, b0, c40); c41 = TL.MultiplyAdd(x, b1, c41);
        x = TL.Broadcast(a[5]);
        c50 = TL.MultiplyAdd(x, b0, c50); c51 = TL.MultiplyAdd(x, b1, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, float* cIn, bool accumulate, TVec v0, TVec v1)
    {
        if (accumulate)
        {
            v0 = TL.Add(v0, TL.Load(cIn));
            v1 = TL.Add(v1, TL.Load(cIn + TL.Lanes));
        }
        TL.Store(v0, c);
        TL.Store(v1, c + TL.Lanes);
    }
}

