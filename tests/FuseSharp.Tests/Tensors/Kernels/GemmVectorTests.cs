using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

/// <summary>
/// The matrix-vector kernel's dot form (decoding) bit for bit: several matrices in one dispatch, split into work items
/// that threads claim, give exactly what a plain statement of its summation order gives (per result: 8 lanes of
/// fused multiply-adds over whole 8-steps of k, <see cref="Vector256.Sum{T}"/>, then the k tail in plain float
/// arithmetic), for any thread count, with row tails, k tails, padded strides and accumulation. The tolerance check
/// against the FP64 reference is in <see cref="GemmTests"/>.
/// </summary>
[Collection(ParallelismCollection.Name)]
public unsafe class GemmVectorTests
{
    private const float Sentinel = -777.25f;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Segments_ClaimedItems_MatchSummationOrderBitwise(bool bf16)
    {
        var rng = new Random(bf16 ? 11 : 12);
        // k = 300 with 2 000 rows spans several 64 KiB work items (F32 and BF16); the other sizes fit in one.
        foreach (var (rows, k, cols) in new[] { (1, 1, new[] { 5 }), (1, 7, new[] { 1, 4, 3 }), (2, 8, new[] { 9, 2 }), (3, 19, new[] { 13, 6, 1 }),
                     (1, 300, new[] { 2000, 37, 770 }), (4, 300, new[] { 130, 2000 }), (5, 33, new[] { 17, 40 }), (8, 300, new[] { 1100, 4 }) })
        {
            int total = cols.Sum(), ldx = k + 3, ldy = total + 5;
            var x = Values(rng, rows * ldx);
            var w = cols.Select(c => Values(rng, c * k)).ToArray();
            var bits = w.Select(m => m.Select(BFloat16Conversion.FromSingle).ToArray()).ToArray();
            if (bf16) for (int s = 0; s < w.Length; s++) BFloat16Conversion.ToSingle(bits[s], w[s]);
            var y0 = Values(rng, rows * ldy);
            for (int i = 0; i < y0.Length; i++) if (i % ldy >= total) y0[i] = Sentinel;
            foreach (bool accumulate in new[] { false, true })
            {
                var expected = (float[])y0.Clone();
                int offset = 0;
                for (int s = 0; s < cols.Length; s++)
                {
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < cols[s]; j++)
                        {
                            float dot = Dot(x.AsSpan(i * ldx, k), w[s].AsSpan(j * k, k));
                            ref float e = ref expected[i * ldy + offset + j];
                            e = accumulate ? e + dot : dot;
                        }
                    offset += cols[s];
                }
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    var actual = (float[])y0.Clone();
                    if (bf16) Run(bits, threads, rows, k, x, ldx, cols, actual, ldy, accumulate);
                    else Run(w, threads, rows, k, x, ldx, cols, actual, ldy, accumulate);
                    for (int i = 0; i < actual.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                            $"{(bf16 ? "bf16" : "f32")} rows={rows} k={k} cols=[{string.Join(",", cols)}] acc={accumulate} threads={threads}: y[{i / ldy},{i % ldy}] = {actual[i]}, expected {expected[i]}");
                }
            }
        }
    }

    [Fact]
    public void OneSegment_EqualsSegmentsCalledSeparately()
    {
        var rng = new Random(3);
        int rows = 2, k = 300, ldx = k, ldy = 1300;
        int[] cols = [1000, 3, 297];
        var x = Values(rng, rows * ldx);
        var w = cols.Select(c => Values(rng, c * k)).ToArray();
        var together = new float[rows * ldy];
        Run(w, 2, rows, k, x, ldx, cols, together, ldy, accumulate: false);
        var apart = new float[rows * ldy];
        int offset = 0;
        for (int s = 0; s < cols.Length; s++)
        {
            fixed (float* px = x, pw = w[s], py = apart)
                GemmVector.Run(2, Vector256.IsHardwareAccelerated, rows, cols[s], k, px, ldx, pw, k, dotForm: true, py + offset, ldy, 1, accumulate: false);
            offset += cols[s];
        }
        Assert.Equal(apart, together);
    }

    /// <summary>
    /// Products back to back, as in a decoding step (helpers that finished one product wait for the next and join it at
    /// once, or arrive late, or while the caller is between products): every result bit for bit what one thread computes,
    /// with 2 and 3 threads, for products of different shapes, both weight types and accumulation.
    /// </summary>
    [Fact]
    public void BackToBackProducts_HelpersStaying_EqualOneThreadBitwise()
    {
        var rng = new Random(21);
        var shapes = new[] { (1, 300, new[] { 2000, 37 }), (2, 129, new[] { 4100 }), (1, 64, new[] { 5000, 3, 700 }), (3, 300, new[] { 1500 }) };
        var cases = shapes.Select(sh =>
        {
            var (rows, k, cols) = sh;
            var x = Values(rng, rows * k);
            var w = cols.Select(c => Values(rng, c * k)).ToArray();
            var bits = w.Select(m => m.Select(BFloat16Conversion.FromSingle).ToArray()).ToArray();
            var y0 = Values(rng, rows * cols.Sum());
            return (rows, k, cols, x, w, bits, y0);
        }).ToArray();
        float[] Product(int c, int threads, bool bf16, bool accumulate)
        {
            var (rows, k, cols, x, w, bits, y0) = cases[c];
            var y = (float[])y0.Clone();
            if (bf16) Run(bits, threads, rows, k, x, k, cols, y, cols.Sum(), accumulate);
            else Run(w, threads, rows, k, x, k, cols, y, cols.Sum(), accumulate);
            return y;
        }
        foreach (int threads in new[] { 2, 3 })
        {
            for (int round = 0; round < 25; round++)
            {
                int c = round % cases.Length;
                bool bf16 = round % 2 == 0, accumulate = round % 3 == 0;
                var expected = Product(c, 1, bf16, accumulate);
                var actual = Product(c, threads, bf16, accumulate);
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                        $"threads={threads} round={round} case={c} bf16={bf16} acc={accumulate}: y[{i}] = {actual[i]}, expected {expected[i]}");
                if (round % 5 == 4) Thread.Sleep(3); // helpers leave while the caller is away; the next product queues new ones
            }
        }
    }

    /// <summary>The kernel's order for one result: lane l sums x·w over p ≡ l (mod 8) of the whole 8-steps (fused), lanes summed, then the tail.</summary>
    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> w)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            float plain = 0;
            for (int p = 0; p < x.Length; p++) plain += x[p] * w[p];
            return plain;
        }
        var lanes = new float[8];
        int q = 0;
        for (; q + 8 <= x.Length; q += 8)
            for (int l = 0; l < 8; l++) lanes[l] = Fma.IsSupported ? MathF.FusedMultiplyAdd(x[q + l], w[q + l], lanes[l]) : x[q + l] * w[q + l] + lanes[l];
        float s = Vector256.Sum(Vector256.Create(lanes));
        for (; q < x.Length; q++) s += x[q] * w[q];
        return s;
    }

    private static void Run<TW>(TW[][] w, int threads, int rows, int k, float[] x, int ldx, int[] cols, float[] y, int ldy, bool accumulate)
        where TW : unmanaged
    {
        var handles = w.Select(m => System.Runtime.InteropServices.GCHandle.Alloc(m, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
        try
        {
            fixed (float* px = x, py = y)
            {
                var segments = new GemmVector.Segment[w.Length];
                int offset = 0;
                for (int s = 0; s < w.Length; s++)
                {
                    segments[s] = new GemmVector.Segment((void*)handles[s].AddrOfPinnedObject(), k, cols[s], py + offset);
                    offset += cols[s];
                }
                GemmVector.Run<TW>(threads, Vector256.IsHardwareAccelerated, rows, k, px, ldx, segments, dotForm: true, ldy, 1, accumulate);
            }
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
    }

    private static float[] Values(Random rng, int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
