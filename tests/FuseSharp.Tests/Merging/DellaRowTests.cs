using System.Runtime.Intrinsics;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// DELLA's rank-free sampler (<see cref="DellaRow"/>): the vectorised decisions bit for bit against the scalar
/// definition (which ranks every row by a stable sort), the keep frequency of each rank against p(rank), and the
/// masks <see cref="Sparsify"/> builds from it.
/// </summary>
public class DellaRowTests
{
    /// <summary>|Δ| of BF16 checkpoints: differences of BF16 values whose magnitudes span many binades (heavy ties, zeros).</summary>
    private static float[] Bf16Deltas(int n, int seed)
    {
        static float Bf(float x) => BitConverter.UInt32BitsToSingle((uint)BFloat16Conversion.FromSingle(x) << 16);
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ =>
        {
            float b = Bf((float)(Math.Pow(2, -20 * r.NextDouble()) * (r.NextDouble() - 0.5)));
            return MathF.Abs(Bf(b + 0.004f * (float)(r.NextDouble() - 0.5)) - b);
        }).ToArray();
    }

    /// <summary>Keep probabilities from pBase to pBase + 2ε over a row of n (pStep 0 for one element, as Sparsify does).</summary>
    private static DellaRow.Probability Of(double pBase, double twoEpsilon, int n) => DellaRow.Probability.Of(pBase, n > 1 ? twoEpsilon / (n - 1) : 0);

    /// <summary>Settings that leave no draw a candidate (ε 0), some (small and large ε), almost none (ε near n / 2^33:
    /// the dividing path for long rows) and almost every draw (T(0) = 0, T(n − 1) within 2^−22 of 2^32).</summary>
    private static IEnumerable<DellaRow.Probability> Settings(int n) =>
    [
        Of(0.5, 0.0, n), Of(0.45, 0.1, n), Of(0.3, 0.58, n), Of(0.5, 2e-7, n), Of(0.01, 0.98, n), Of(0, 1 - 1.0 / (1 << 22), n),
    ];

    /// <summary>
    /// The multiply-high that finds a candidate's other element equals the floor division it stands for, scalar and
    /// vectorised: at the ends of the candidate interval, where x (n − 1) / d is an integer or just below one, for the
    /// smallest d it is used with (n) and the largest (2^32 − 1), and row lengths up to 2^31 − 1.
    /// </summary>
    [Fact]
    public void Reciprocal_GivesTheFloorDivision()
    {
        var r = new Random(7);
        var cases = new List<(uint D, int N)> { (3, 3), (2, 2), (uint.MaxValue, 2), (uint.MaxValue, int.MaxValue), (1u << 31, int.MaxValue), (4097, 4096), (858993459, 4096) };
        for (int c = 0; c < 200; c++)
        {
            int n = r.Next(2, c % 2 == 0 ? 5000 : int.MaxValue);
            cases.Add(((uint)r.NextInt64(n, 1L << 32), n));
        }
        Assert.Equal(0UL, DellaRow.Reciprocal(3, 4));
        Assert.Equal(0UL, DellaRow.Reciprocal(2, 3));
        Assert.Equal(0UL, DellaRow.Reciprocal(5, 1));
        foreach (var (d, n) in cases)
        {
            ulong m = DellaRow.Reciprocal(d, n);
            Assert.NotEqual(0UL, m);
            var xs = new List<uint> { 0, 1, d - 1, d / 2 };
            // x with x (n − 1) / d at or just below an integer k.
            for (int t = 0; t < 8; t++)
            {
                ulong k = (ulong)r.NextInt64(0, n - 1);
                ulong x0 = (k * d + (ulong)(n - 2)) / (ulong)(n - 1); // smallest x with x (n − 1) >= k d
                foreach (ulong x in new[] { x0, x0 - 1, x0 + 1 })
                    if (x < d) xs.Add((uint)x);
                xs.Add((uint)r.NextInt64(0, d));
            }
            while (xs.Count % 8 != 0) xs.Add(d - 1);
            for (int q = 0; q < xs.Count; q += 8)
            {
                var x = Vector256.Create(xs.GetRange(q, 8).ToArray());
                var fast = !System.Runtime.Intrinsics.X86.Avx2.IsSupported ? default : DellaRow.MultiplyHigh(x, Vector256.Create(m & 0xFFFF_FFFFUL).AsUInt32(),
                    Vector256.Create(m >> 32).AsUInt32());
                for (int l = 0; l < 8; l++)
                {
                    ulong expected = (ulong)xs[q + l] * (ulong)(n - 1) / d;
                    Assert.Equal(expected, Math.BigMul(xs[q + l], m, out _));
                    if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) Assert.Equal(expected, fast.GetElement(l));
                }
            }
        }
    }

    private static void AssertDecidesAsReference(float[] values, UniformStream rng, long start)
    {
        int n = values.Length;
        foreach (var p in Settings(n))
        {
            // A row of the keep span may hold stale bits from a previous row: Decide overwrites its words.
            var fast = Enumerable.Repeat(ulong.MaxValue, (n + 63) / 64 + 1).ToArray();
            var reference = new bool[n];
            int k1 = DellaRow.Decide(values, start, rng, p, fast, out double keptSum, out double totalSum);
            int k2 = DellaRow.Reference(values, start, rng, p, reference);
            // The kept Σ|values| (F32 partial sums) against the FP64 sum in index order.
            double expectedSum = Enumerable.Range(0, n).Where(j => reference[j]).Sum(j => (double)MathF.Abs(values[j]));
            Assert.True(Math.Abs(keptSum - expectedSum) <= 1e-5 * expectedSum, $"n {n}, p {p}: kept sum {keptSum}, expected {expectedSum}");
            double expectedTotal = values.Sum(v => (double)MathF.Abs(v));
            Assert.True(Math.Abs(totalSum - expectedTotal) <= 1e-5 * expectedTotal, $"n {n}, p {p}: row sum {totalSum}, expected {expectedTotal}");
            for (int j = 0; j < n; j++) Assert.True(reference[j] == ((fast[j >> 6] >> (j & 63) & 1) != 0), $"n {n}, p {p}, element {j}");
            for (int j = n; j < (n + 63) / 64 * 64; j++) Assert.Equal(0UL, fast[j >> 6] >> (j & 63) & 1);
            Assert.Equal(ulong.MaxValue, fast[^1]);
            Assert.Equal(k2, k1);
        }
    }

    [Fact]
    public void Decide_MatchesReference_OddAndShortRows()
    {
        var rng = new UniformStream(new CounterRandom(13, "tiny", 1));
        for (int n = 1; n <= 130; n += n < 20 ? 1 : 3)
        {
            // Few levels (ties), zeros, and vector tails.
            var r = new Random(n);
            var values = Enumerable.Range(0, n).Select(i => i % 5 == 0 ? 0f : r.Next(4) / 4f).ToArray();
            AssertDecidesAsReference(values, rng, 64L * n);
        }
    }

    [Theory]
    [InlineData(1024, 0L)]
    [InlineData(4103, 12345L)]
    [InlineData(4103, (1L << 32) - 2000)] // across a 2^32 element boundary: scalar draws past it
    public void Decide_MatchesReference_Bf16Deltas(int n, long start)
    {
        var values = Bf16Deltas(n, n);
        values[n / 2] = 1e-40f; // a subnormal
        AssertDecidesAsReference(values, new UniformStream(new CounterRandom(5, "wide", 2)), start);
    }

    [Theory]
    [InlineData(1027)]
    [InlineData(130)]
    public void Decide_MatchesReference_TiesZerosAndSigns(int n)
    {
        var rng = new UniformStream(new CounterRandom(17, "ties", 1));
        AssertDecidesAsReference(new float[n], rng, 640);                                   // all zero
        AssertDecidesAsReference(Enumerable.Repeat(0.25f, n).ToArray(), rng, 7 * 64);       // all equal
        var r = new Random(n);
        // Signed values, −0 beside +0 (equal keys), and three magnitudes: the order is that of |values|.
        var signed = Enumerable.Range(0, n).Select(i => i % 7 == 0 ? -0f : (r.Next(2) == 0 ? -1 : 1) * r.Next(3) * 0.5f).ToArray();
        AssertDecidesAsReference(signed, rng, 64);
    }

    /// <summary>
    /// The keep frequency of every rank matches p(rank) = pBase + 2ε · rank / (n − 1) within 6σ over many seeds, on a
    /// row whose ranks are a shuffle of the indices; the same check rejects a sampler keyed on the index (the sampler
    /// run on values increasing with the index), so it tests the rank dependence.
    /// </summary>
    [Fact]
    public void KeepFrequency_OfEachRank_IsItsProbability()
    {
        const int n = 48, seeds = 12000;
        const double pBase = 0.1, twoEpsilon = 0.8;
        var p = Of(pBase, twoEpsilon, n);
        var r = new Random(3);
        var shuffled = Enumerable.Range(1, n).Select(v => (float)v).OrderBy(_ => r.Next()).ToArray();
        var ranks = new int[n];
        Ranking.AscendingRanksReference(shuffled, ranks);
        double[] Frequencies(float[] values)
        {
            var counts = new double[n];
            var keep = new ulong[1];
            for (int s = 0; s < seeds; s++)
            {
                DellaRow.Decide(values, 0, new UniformStream(new CounterRandom(s, "frequency", 0)), p, keep, out _, out _);
                for (int j = 0; j < n; j++) counts[j] += keep[0] >> j & 1;
            }
            return counts;
        }
        // Largest deviation from the expected count over the rows' elements, in standard deviations.
        double WorstSigma(double[] counts) => Enumerable.Range(0, n).Max(j =>
        {
            double q = pBase + twoEpsilon * ranks[j] / (n - 1);
            return Math.Abs(counts[j] - seeds * q) / Math.Sqrt(seeds * q * (1 - q));
        });
        Assert.True(WorstSigma(Frequencies(shuffled)) < 6);
        var byIndex = Enumerable.Range(1, n).Select(v => (float)v).ToArray();
        Assert.True(WorstSigma(Frequencies(byIndex)) > 20);
    }

    /// <summary>
    /// Sparsify's DELLA masks are the rows' <see cref="DellaRow.Reference"/> decisions, for rows starting on a word
    /// boundary (written in place) and not (set bit by bit); inverse-probability rescaling gives the same bits (one seed,
    /// one mask whatever the rescale mode) and 1 / p(rank) on the kept elements.
    /// </summary>
    [Theory]
    [InlineData(3, 67)]
    [InlineData(4, 192)]
    [InlineData(1, 1001)]
    [InlineData(5, 1)]
    public void SparsifyMasks_AreTheReferenceDecisions(int rows, int cols)
    {
        long n = (long)rows * cols;
        const double density = 0.45, epsilon = 0.2;
        var values = Bf16Deltas((int)n, rows * 31 + cols);
        var buffers = new List<FloatBuffer>();
        SparseMask Build(RescaleMode mode) => Sparsify.Build(n, cols,
            [new SparsifySettings(SparsifyMethod.DellaMagprune, density, 0, epsilon, true, mode, TopKTies.Exact, BreadcrumbsSlice.Intended)],
            (s, l, sc) => values.AsSpan((int)s, l).CopyTo(sc.Get(0, l)), i => new CounterRandom(3, "della", i),
            len => { var f = new FloatBuffer(len, zero: true); buffers.Add(f); return f; }, _ => { }, CancellationToken.None)[0];
        try
        {
            var l1 = Build(RescaleMode.L1Norm);
            var inverse = Build(RescaleMode.InverseProbability);
            Assert.Equal(l1.Bits!.RawWords, inverse.Bits!.RawWords);
            Assert.Equal(l1.Kept, inverse.Kept);
            var rng = new UniformStream(new CounterRandom(3, "della", 0));
            for (int row = 0; row < rows; row++)
            {
                var a = values.AsSpan(row * cols, cols);
                double pBase = cols == 1 ? density : density - epsilon, pStep = cols == 1 ? 0 : 2 * epsilon / (cols - 1);
                var keep = new bool[cols];
                DellaRow.Reference(a, (long)row * cols, rng, DellaRow.Probability.Of(pBase, pStep), keep);
                var ranks = new int[cols];
                Ranking.AscendingRanksReference(a, ranks);
                var scale = inverse.ElementScale!.Slice((long)row * cols, cols);
                for (int j = 0; j < cols; j++)
                {
                    Assert.Equal(keep[j], l1.Bits.Get((long)row * cols + j));
                    Assert.Equal(keep[j] ? (float)(1 / (pBase + pStep * ranks[j])) : 0f, scale[j]);
                }
            }
        }
        finally
        {
            foreach (var f in buffers) f.Dispose();
        }
    }
}
