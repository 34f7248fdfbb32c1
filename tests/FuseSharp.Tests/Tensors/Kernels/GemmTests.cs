using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

/// <summary>
/// Every GEMM path (blocked with each micro-kernel, matrix-vector in both forms, F32 and BF16 B, all transposes,
/// accumulate, padded leading dimensions, 1 and 2 threads) against <see cref="Gemm.MatMulReference"/>.
/// Tolerance: with unit roundoff u = 2⁻²⁴, any FP32 summation order of K products (fused or not) plus the final
/// addition to C is within (K + 2)·u·(Σ_p |a_ip·b_pj| + |c_ij|) of the exact value (Higham, Accuracy and
/// Stability of Numerical Algorithms, §3.1), and the FP64 reference is well within u·|c| of it.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class GemmTests
{
    private const float Sentinel = -12345.5f;
    private const float U = 1f / (1 << 24); // FP32 unit roundoff

    // (m, n, k): empty, single, the 1-8 row/column vector path (groups of 4 beyond 4), odd sizes around MR/NR, k across KC blocks (192, 256),
    // m across MC (144), n across several B panels.
    public static readonly (int M, int N, int K)[] Sizes =
    [
        (0, 5, 3), (5, 0, 3), (3, 5, 0), (1, 1, 1), (1, 7, 9), (2, 33, 17), (3, 3, 40), (4, 70, 300), (9, 4, 31),
        (5, 5, 5), (6, 16, 8), (7, 17, 1), (8, 9, 43), (12, 32, 193), (13, 37, 257), (31, 45, 64), (150, 20, 70),
        (29, 131, 530), (40, 7, 19),
    ];

    // Kernel names, not the internal enum: theory parameters of public test methods must be public types.
    public static TheoryData<string, bool> KernelsAndTypes()
    {
        var data = new TheoryData<string, bool>();
        foreach (var kernel in Enum.GetNames<Gemm.Kernel>())
        {
            data.Add(kernel, false);
            data.Add(kernel, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelsAndTypes))]
    public void EveryShapeAndTranspose_MatchesReference(string kernelName, bool bf16)
    {
        var kernel = Enum.Parse<Gemm.Kernel>(kernelName);
        var rng = new Random(20230828);
        foreach (var (m, n, k) in Sizes)
            foreach (var transA in new[] { false, true })
                foreach (var transB in new[] { false, true })
                    foreach (var accumulate in new[] { false, true })
                        CheckAgainstReference(rng, kernel, bf16, transA, transB, m, n, k, accumulate, pad: (m + n + k) % 3, vectorRows: 8);
    }

    [Theory]
    [MemberData(nameof(KernelsAndTypes))]
    public void BlockedPath_WithFewRowsOrColumns_MatchesReference(string kernelName, bool bf16)
    {
        var kernel = Enum.Parse<Gemm.Kernel>(kernelName);
        var rng = new Random(7);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (1, 40, 9), (3, 19, 70), (37, 2, 200), (4, 4, 4) })
            foreach (var transA in new[] { false, true })
                foreach (var transB in new[] { false, true })
                    CheckAgainstReference(rng, kernel, bf16, transA, transB, m, n, k, accumulate: true, pad: 1, vectorRows: 0);
    }

    [Fact]
    public void LargeLeadingDimensions_OnlyTheViewIsWritten()
    {
        var rng = new Random(11);
        foreach (var kernel in Enum.GetValues<Gemm.Kernel>())
            foreach (var (m, n, k) in new[] { (2, 9, 5), (9, 2, 5), (20, 21, 22) })
                CheckAgainstReference(rng, kernel, bf16: false, transA: true, transB: false, m, n, k, accumulate: false, pad: 100, vectorRows: 8);
    }

    [Fact]
    public void MultiSlab_MatchesReference()
    {
        // A B slab of 3 x 16 x k floats forces several column slabs through one call.
        var rng = new Random(5);
        int m = 10, n = 100, k = 40;
        foreach (var transB in new[] { false, true })
        {
            var (a, lda) = Random(rng, m, k, 0);
            var (b, ldb) = Random(rng, transB ? n : k, transB ? k : n, 0);
            var expected = new float[m * n];
            var actual = new float[m * n];
            Gemm.MatMulReference(false, transB, m, n, k, a, lda, b, ldb, expected, n);
            Gemm.MatMul<float>(Gemm.Kernel.Vector256, 2, false, transB, m, n, k, a, lda, b, ldb, actual, n, false, slabFloats: 3 * 16 * k);
            AssertClose(expected, actual, (k + 2) * U * k, "multi-slab");
        }
    }

    [Fact]
    public void BufferedPartialSums_GiveTheBitsOfWritingCDirectly()
    {
        // Overwriting C with 4 or more k blocks (K > 3 KC: 768 or 576), the blocked path keeps partial sums in a
        // per-thread C block and writes C after the last one; it must give exactly the bits of accumulating in C
        // itself: every kernel, F32 and BF16 B, all transposes, edge tiles, a padded ldc (nothing outside the view
        // written, NaN in the old C overwritten), 1 and 2 threads, several slabs; accumulating and 2 k blocks go
        // direct either way (checked all the same).
        var rng = new Random(29);
        foreach (var kernel in Enum.GetValues<Gemm.Kernel>())
            foreach (var (m, n, k, slab) in new[] { (13, 37, 1030, 0L), (31, 45, 800, 0L), (50, 100, 800, 3L * 32 * 800), (9, 16, 512, 0L) })
                foreach (var transA in new[] { false, true })
                    foreach (var transB in new[] { false, true })
                        foreach (var accumulate in new[] { false, true })
                            foreach (var bf16 in new[] { false, true })
                                foreach (var threads in new[] { 1, 2 })
                                {
                                    var (a, lda) = Random(rng, transA ? k : m, transA ? m : k, 1);
                                    var (b, ldb) = Random(rng, transB ? n : k, transB ? k : n, 0);
                                    var bits = new ushort[b.Length];
                                    for (int i = 0; i < b.Length; i++) bits[i] = BFloat16Conversion.FromSingle(b[i]);
                                    int ldc = n + 3;
                                    var c0 = new float[m * ldc];
                                    for (int i = 0; i < c0.Length; i++) c0[i] = i % ldc < n ? (float)(rng.NextDouble() * 2 - 1) : Sentinel;
                                    c0[ldc + 1] = float.NaN;
                                    var direct = (float[])c0.Clone();
                                    var buffered = (float[])c0.Clone();
                                    long slabFloats = slab > 0 ? slab : GemmBlocked.SlabFloats;
                                    foreach (var (c, bufferC) in new[] { (direct, false), (buffered, true) })
                                    {
                                        if (bf16) Gemm.MatMul<ushort>(kernel, threads, transA, transB, m, n, k, a, lda, bits, ldb, c, ldc, accumulate, 0, slabFloats, bufferC);
                                        else Gemm.MatMul<float>(kernel, threads, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, 0, slabFloats, bufferC);
                                    }
                                    string what = $"{kernel} {m}x{n}x{k} transA={transA} transB={transB} acc={accumulate} bf16={bf16} threads={threads}";
                                    Assert.True(direct.AsSpan().SequenceEqual(buffered), what);
                                    for (int i = 0; i < c0.Length; i++)
                                        if (i % ldc >= n) Assert.True(buffered[i] == Sentinel, $"{what}: wrote outside C at {i}");
                                    Assert.Equal(accumulate, float.IsNaN(buffered[ldc + 1]));
                                }
    }

    [Fact]
    public void WorkItems_GiveTheSameBitsForAnyThreadCountAndAPacking()
    {
        // The blocked path's work items (row blocks by column parts, claimed by whichever thread comes) and op(A) packed
        // once or per item must not change a single bit: 3 row blocks (MC 144) with a short last one, 3 k blocks
        // (buffered and direct), several slabs with a narrow last one, edge tiles, F32 and BF16 B, all transposes.
        var rng = new Random(41);
        foreach (var kernel in new[] { Gemm.Kernel.Vector256, Gemm.BestKernel }.Distinct())
            foreach (var (m, n, k, slab) in new[] { (301, 203, 600, 4L * 16 * 600), (97, 150, 300, 0L) })
                foreach (var transA in new[] { false, true })
                    foreach (var transB in new[] { false, true })
                        foreach (var accumulate in new[] { false, true })
                        {
                            var (a, lda) = Random(rng, transA ? k : m, transA ? m : k, 0);
                            var (b, ldb) = Random(rng, transB ? n : k, transB ? k : n, 1);
                            var bits = new ushort[b.Length];
                            for (int i = 0; i < b.Length; i++) bits[i] = BFloat16Conversion.FromSingle(b[i]);
                            var c0 = new float[m * n];
                            for (int i = 0; i < c0.Length; i++) c0[i] = (float)(rng.NextDouble() * 2 - 1);
                            long slabFloats = slab > 0 ? slab : GemmBlocked.SlabFloats;
                            foreach (var bf16 in new[] { false, true })
                            {
                                float[]? first = null;
                                foreach (var (threads, packedA) in new[] { (1, 0L), (2, 0L), (2, GemmBlocked.PackedAFloats), (3, GemmBlocked.PackedAFloats) })
                                {
                                    var c = (float[])c0.Clone();
                                    if (bf16) Gemm.MatMul<ushort>(kernel, threads, transA, transB, m, n, k, a, lda, bits, ldb, c, n, accumulate, 0, slabFloats, true, packedA);
                                    else Gemm.MatMul<float>(kernel, threads, transA, transB, m, n, k, a, lda, b, ldb, c, n, accumulate, 0, slabFloats, true, packedA);
                                    first ??= c;
                                    Assert.True(first.AsSpan().SequenceEqual(c),
                                        $"{kernel} {m}x{n}x{k} transA={transA} transB={transB} acc={accumulate} bf16={bf16} threads={threads} packedA={packedA}");
                                }
                            }
                        }
    }

    [Fact]
    public void NaNInOldC_IsOverwrittenUnlessAccumulating()
    {
        foreach (var (m, n) in new[] { (1, 8), (20, 20) })
        {
            var a = Enumerable.Repeat(1f, m * 3).ToArray();
            var b = Enumerable.Repeat(2f, 3 * n).ToArray();
            var c = Enumerable.Repeat(float.NaN, m * n).ToArray();
            Gemm.MatMul(false, false, m, n, 3, a, 3, b, n, c, n);
            Assert.All(c, v => Assert.Equal(6f, v));
            c[0] = float.NaN;
            Gemm.MatMul(false, false, m, n, 3, a, 3, b, n, c, n, accumulate: true);
            Assert.True(float.IsNaN(c[0]));
            Assert.Equal(12f, c[1]);
        }
    }

    [Fact]
    public void ThreadCount_DoesNotChangeTheBits()
    {
        var rng = new Random(3);
        foreach (var (m, n, k) in new[] { (3, 301, 77), (301, 3, 77), (77, 301, 300) })
            foreach (var transB in new[] { false, true })
            {
                var (a, lda) = Random(rng, m, k, 0);
                var (b, ldb) = Random(rng, transB ? n : k, transB ? k : n, 0);
                var one = new float[m * n];
                var two = new float[m * n];
                Gemm.MatMul<float>(Gemm.BestKernel, 1, false, transB, m, n, k, a, lda, b, ldb, one, n, false);
                Gemm.MatMul<float>(Gemm.BestKernel, 2, false, transB, m, n, k, a, lda, b, ldb, two, n, false);
                Assert.Equal(one, two);
            }
    }

    [Fact]
    public void OddThreadCounts_MatchReference()
    {
        // Thread counts that do not factor into the panel grid (7 over 5 x 3 panels) must still split and agree.
        var rng = new Random(13);
        foreach (var threads in new[] { 3, 7 })
            foreach (var (m, n, k) in new[] { (30, 48, 20), (200, 40, 64) })
            {
                var (a, lda) = Random(rng, m, k, 0);
                var (b, ldb) = Random(rng, k, n, 0);
                var expected = new float[m * n];
                var actual = new float[m * n];
                Gemm.MatMulReference(false, false, m, n, k, a, lda, b, ldb, expected, n);
                Gemm.MatMul<float>(Gemm.BestKernel, threads, false, false, m, n, k, a, lda, b, ldb, actual, n, false);
                AssertClose(expected, actual, (k + 2) * U * k, $"threads={threads} {m}x{n}x{k}");
            }
    }

    [Fact]
    public void SingleThreadedCall_DoesNotAllocateInTheHotPath()
    {
        // After a warm-up (pack buffers cached per thread), a call allocates only its small job object, whatever the size.
        var rng = new Random(17);
        foreach (var (m, n, k) in new[] { (300, 200, 300), (1, 2000, 300), (2000, 3, 300) })
        {
            var (a, _) = Random(rng, m, k, 0);
            var (b, _) = Random(rng, k, n, 0);
            var c = new float[m * n];
            Gemm.MatMul<float>(Gemm.BestKernel, 1, false, false, m, n, k, a, k, b, n, c, n, false);
            long before = GC.GetAllocatedBytesForCurrentThread();
            Gemm.MatMul<float>(Gemm.BestKernel, 1, false, false, m, n, k, a, k, b, n, c, n, false);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 1024, $"{m}x{n}x{k}: {allocated} bytes allocated");
        }
    }

    [Fact]
    public void Bf16_MatchesF32OfTheWidenedValues()
    {
        // BF16 B must give exactly what the F32 path gives on the same (exactly widened) values.
        var rng = new Random(9);
        int m = 20, n = 33, k = 65;
        var (a, lda) = Random(rng, m, k, 0);
        var bits = new ushort[k * n];
        for (int i = 0; i < bits.Length; i++) bits[i] = BFloat16Conversion.FromSingle((float)(rng.NextDouble() * 2 - 1));
        var wide = new float[bits.Length];
        BFloat16Conversion.ToSingle(bits, wide);
        var fromBf16 = new float[m * n];
        var fromF32 = new float[m * n];
        Gemm.MatMulBf16(false, false, m, n, k, a, lda, bits, n, fromBf16, n);
        Gemm.MatMul(false, false, m, n, k, a, lda, wide, n, fromF32, n);
        Assert.Equal(fromF32, fromBf16);
    }

    [Fact]
    public void Bf16MatVec_PairTailsAndRowGroups_MatchReferenceAndSingleRows()
    {
        // BF16 x·Wᵀ with 1-8 vectors reads W 16 values per load: k with and without 16-, 8- and scalar tails, n with
        // and without a tail of the 4-row groups; every vector's result must equal the single-vector call bit for bit
        // (batched decoding equals per-row decoding), and the reference within the bound.
        var rng = new Random(21);
        foreach (var k in new[] { 16, 24, 31, 47, 775 })
            foreach (var n in new[] { 1, 6, 13 })
            {
                for (int m = 1; m <= 8; m++)
                    CheckAgainstReference(rng, Gemm.BestKernel, bf16: true, transA: false, transB: true, m, n, k, accumulate: m % 2 == 0, pad: m % 3, vectorRows: 8);
                var (x, _) = Random(rng, 8, k, 0);
                var bits = new ushort[n * k];
                for (int i = 0; i < bits.Length; i++) bits[i] = BFloat16Conversion.FromSingle((float)(rng.NextDouble() * 2 - 1));
                var all = new float[8 * n];
                Gemm.MatMulBf16(false, true, 8, n, k, x, k, bits, k, all, n);
                for (int i = 0; i < 8; i++)
                {
                    var one = new float[n];
                    Gemm.MatMulBf16(false, true, 1, n, k, x.AsSpan(i * k, k), k, bits, k, one, n);
                    Assert.Equal(one, all.AsSpan(i * n, n).ToArray());
                }
            }
    }

    [Fact]
    public unsafe void MicroKernel_EqualsItsScalarDefinitionBitForBit()
    {
        // The Vector256 micro-kernel (steps unrolled four at a time, then single steps) computes every C element as the
        // chain acc = fma(a_ip, b_pj, acc) over p = 0..kc-1 from 0, then acc + Cin: step counts around the unroll (every
        // tail length 1-3), a full KC, with and without Cin (Cin another tile or C itself).
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported) return;
        var rng = new Random(41);
        const int mr = 6, nr = 16;
        foreach (var kc in new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 256, 257 })
            foreach (var cIn in new[] { 0, 1, 2 }) // none, another tile, C itself
            {
                var a = new float[kc * mr + 1];
                var b = new float[kc * nr + 1];
                var old = new float[mr * nr];
                for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
                for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
                for (int i = 0; i < old.Length; i++) old[i] = (float)(rng.NextDouble() * 2 - 1);
                var expected = new float[mr * nr];
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++)
                    {
                        float acc = 0;
                        for (int p = 0; p < kc; p++) acc = MathF.FusedMultiplyAdd(a[p * mr + i], b[p * nr + j], acc);
                        expected[i * nr + j] = cIn == 0 ? acc : acc + old[i * nr + j];
                    }
                var c = cIn == 2 ? (float[])old.Clone() : new float[mr * nr];
                var other = (float[])old.Clone();
                fixed (float* pa = a, pb = b, pc = c, po = other)
                    GemmKernel<Lanes256, System.Runtime.Intrinsics.Vector256<float>>.Run(kc, pa, pb, cIn == 0 ? null : cIn == 1 ? po : pc, nr, pc, nr);
                Assert.True(expected.AsSpan().SequenceEqual(c), $"kc {kc} cIn {cIn}");
            }
    }

    [Fact]
    public unsafe void TransposePacking_SimdEqualsScalar()
    {
        // The AVX transposing pack (8 x 8 blocks a group of 8 rows at a time, whole-vector stores spilling into the
        // next step) must write exactly the scalar pack: panel widths 2, 6, 16, 32 and one not a multiple of 8, full and
        // short panels, step counts with and without an 8-step tail, F32 and BF16 sources; the slack after the panel
        // is the only room it may touch.
        var rng = new Random(31);
        foreach (var width in new[] { 2, 6, 12, 16, 32 })
            foreach (var rows in new[] { 1, 5, 6, 8, 12, 16, 32 }.Where(r => r <= width))
                foreach (var kc in new[] { 1, 7, 8, 16, 23, 64, 257 })
                {
                    int ld = kc + 3;
                    var src = new float[rows * ld];
                    for (int i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 2 - 1);
                    var bits = new ushort[src.Length];
                    for (int i = 0; i < bits.Length; i++) bits[i] = BFloat16Conversion.FromSingle(src[i]);
                    foreach (var bf16 in new[] { false, true })
                    {
                        var expected = new float[kc * width + GemmPacking.Slack];
                        var actual = new float[kc * width + GemmPacking.Slack];
                        Array.Fill(expected, Sentinel);
                        Array.Fill(actual, Sentinel);
                        fixed (float* ps = src, pe = expected, pa = actual)
                        fixed (ushort* pb = bits)
                        {
                            if (bf16)
                            {
                                GemmPacking.PackTranspose(pb, ld, rows, kc, pe, width, simd: false);
                                GemmPacking.PackTranspose(pb, ld, rows, kc, pa, width, simd: true);
                            }
                            else
                            {
                                GemmPacking.PackTranspose(ps, ld, rows, kc, pe, width, simd: false);
                                GemmPacking.PackTranspose(ps, ld, rows, kc, pa, width, simd: true);
                            }
                        }
                        string what = $"width {width} rows {rows} kc {kc} bf16 {bf16}";
                        Assert.True(expected.AsSpan(0, kc * width).SequenceEqual(actual.AsSpan(0, kc * width)), what);
                        Assert.True(expected.AsSpan(0, kc * width).IndexOf(Sentinel) < 0, what);
                    }
                }
    }

    [Fact]
    public void BadArguments_Throw()
    {
        var x = new float[16];
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.MatMul(false, false, -1, 2, 2, x, 2, x, 2, x, 2));
        Assert.Throws<ArgumentException>(() => Gemm.MatMul(false, false, 2, 2, 4, x, 3, x, 2, x, 2));
        Assert.Throws<ArgumentException>(() => Gemm.MatMul(false, false, 4, 4, 5, x, 5, x, 4, x, 4));
        Assert.Throws<ArgumentException>(() => Gemm.MatMulBf16(false, true, 2, 4, 4, x, 4, new ushort[15], 4, x, 4));
    }

    private static void CheckAgainstReference(Random rng, Gemm.Kernel kernel, bool bf16, bool transA, bool transB,
        int m, int n, int k, bool accumulate, int pad, int vectorRows)
    {
        string what = $"{kernel} {(bf16 ? "bf16" : "f32")} transA={transA} transB={transB} acc={accumulate} m={m} n={n} k={k} pad={pad} vectorRows={vectorRows}";
        var (a, lda) = Random(rng, transA ? k : m, transA ? m : k, pad);
        var (b, ldb) = Random(rng, transB ? n : k, transB ? k : n, pad);
        var bits = new ushort[b.Length];
        if (bf16)
        {
            for (int i = 0; i < b.Length; i++) bits[i] = BFloat16Conversion.FromSingle(b[i]);
            BFloat16Conversion.ToSingle(bits, b);
        }
        int ldc = n + pad;
        var c0 = new float[Math.Max(0, m * ldc)];
        for (int i = 0; i < c0.Length; i++) c0[i] = i % ldc < n ? (float)(rng.NextDouble() * 2 - 1) : Sentinel;
        var expected = (float[])c0.Clone();
        Gemm.MatMulReference(transA, transB, m, n, k, a, lda, b, ldb, expected, ldc, accumulate);

        // Per-element bound (K + 2)·u·(Σ|a·b| + |c_old|).
        var bound = new float[c0.Length];
        var absA = a.Select(Math.Abs).ToArray();
        var absB = b.Select(Math.Abs).ToArray();
        for (int i = 0; i < c0.Length; i++) bound[i] = accumulate ? Math.Abs(c0[i]) : 0;
        Gemm.MatMulReference(transA, transB, m, n, k, absA, lda, absB, ldb, bound, ldc, accumulate: true);

        foreach (var threads in new[] { 1, 2 })
        {
            var actual = (float[])c0.Clone();
            if (bf16) Gemm.MatMul<ushort>(kernel, threads, transA, transB, m, n, k, a, lda, bits, ldb, actual, ldc, accumulate, vectorRows);
            else Gemm.MatMul<float>(kernel, threads, transA, transB, m, n, k, a, lda, b, ldb, actual, ldc, accumulate, vectorRows);
            for (int i = 0; i < actual.Length; i++)
            {
                if (i % ldc >= n)
                {
                    Assert.True(actual[i] == Sentinel, $"{what} threads={threads}: wrote outside C at {i}");
                    continue;
                }
                float tolerance = (k + 2) * U * bound[i] + 1e-30f;
                Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance,
                    $"{what} threads={threads}: C[{i / ldc},{i % ldc}] = {actual[i]}, expected {expected[i]} ± {tolerance}");
            }
        }
    }

    private static (float[] Values, int Ld) Random(Random rng, int rows, int cols, int pad)
    {
        int ld = cols + pad;
        var values = new float[Math.Max(0, rows * ld)];
        for (int i = 0; i < values.Length; i++) values[i] = i % ld < cols ? (float)(rng.NextDouble() * 2 - 1) : float.NaN;
        return (values, ld);
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}: [{i}] {actual[i]} vs {expected[i]}");
    }
}
