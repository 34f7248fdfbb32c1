using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>The merge kernels against their plain scalar definitions.</summary>
[Collection(ParallelismCollection.Name)]
public class KernelTests
{
    /// <summary>Values with many exact ties (quantised), as BF16 checkpoints produce.</summary>
    private static float[] Quantised(int n, int seed, int levels)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)Math.Round(r.NextDouble() * levels) / levels).ToArray();
    }

    [Theory]
    [InlineData(1000, 50)]        // direct path
    [InlineData(200_000, 1000)]   // sampled brackets, heavy ties
    [InlineData(150_000, 1 << 20)] // sampled brackets, nearly distinct
    public void OrderStatistics_MatchSorting(int n, int levels)
    {
        var a = Quantised(n, n, levels);
        var b = a.Select(x => 1 - x).ToArray();
        long[] ranksA = [0, n / 10, n / 2, n - n / 7, n - 1], ranksB = [n / 3, n - 1];
        ChunkProducer produce = (start, length, sc) =>
        {
            a.AsSpan((int)start, length).CopyTo(sc.Get(0, length));
            b.AsSpan((int)start, length).CopyTo(sc.Get(1, length));
        };
        var sel = OrderStatistics.Select(n, 2, [ranksA, ranksB], produce, 42, default);
        foreach (var (values, ranks, series) in new[] { (a, ranksA, 0), (b, ranksB, 1) })
        {
            var sorted = values.Order().ToArray();
            for (int k = 0; k < ranks.Length; k++)
            {
                var r = sel.Results[series][k];
                float v = sorted[ranks[k]];
                Assert.Equal(v, r.Value);
                Assert.Equal(values.Count(x => x < v), r.Less);
                Assert.Equal(values.Count(x => x == v), r.Equal);
                double sumLess = values.Where(x => x < v).Sum(x => (double)x);
                Assert.True(Math.Abs(sumLess - r.SumLess) <= 1e-6 * Math.Abs(sumLess) + 1e-9, $"sum below: {r.SumLess} vs {sumLess}");
                // The q-th element equal to v, in index order.
                long q = ranks[k] - r.Less;
                long expected = Enumerable.Range(0, n).Where(i => values[i] == v).Skip((int)q).First();
                Assert.Equal(expected, sel.IndexOfEqual(series, ranks[k], q));
            }
        }
        // Without sums the pass finds the same elements.
        var noSums = OrderStatistics.Select(n, 2, [ranksA, ranksB], produce, 42, default, sums: false);
        for (int s = 0; s < 2; s++)
            Assert.Equal(sel.Results[s].Select(r => (r.Rank, r.Value, r.Less, r.Equal)), noSums.Results[s].Select(r => (r.Rank, r.Value, r.Less, r.Equal)));
    }

    [Fact]
    public void BracketScan_MatchesScalarDefinition()
    {
        // Counts and the inside values (in index order) are those of the plain per-element definition, for every length
        // (tails), ends that occur, lo = hi, open ends and NaN.
        var r = new Random(11);
        foreach (int n in new[] { 0, 1, 7, 8, 9, 63, 1029, 16384 + 5 })
            foreach (var (lo, hi) in new[] { (0.3f, 0.35f), (0.5f, 0.5f), (float.NegativeInfinity, 0.1f), (0.9f, float.PositiveInfinity), (2f, 3f) })
            {
                var v = Enumerable.Range(0, n).Select(_ => (float)Math.Round(r.NextDouble() * 40) / 40).ToArray();
                if (n > 9) v[n / 2] = float.NaN;
                var got = OrderStatistics.Scan(v, lo, hi);
                var below = v.Where(x => x < lo).ToArray();
                Assert.Equal(below.Length, got.Below);
                Assert.Equal(v.Count(x => x == lo), got.AtLow);
                Assert.Equal(lo == hi ? 0 : v.Count(x => x == hi), got.AtHigh);
                Assert.Equal(v.Where(x => x > lo && x < hi).ToArray(), got.Inside);
                double sum = below.Sum(x => (double)x);
                Assert.True(Math.Abs(sum - got.SumBelow) <= 1e-6 * Math.Abs(sum) + 1e-9, $"sum below: {got.SumBelow} vs {sum}");
            }
    }

    [Fact]
    public void BracketScan_TwoBrackets_EqualEachAloneBitwise()
    {
        // The one-pass scan of two brackets gives each bracket exactly its single scan: counts, the sums' bits (sums on
        // and off), the inside values in order; for tails, ends that occur (ties), lo = hi, open ends, overlapping brackets and NaN.
        var r = new Random(12);
        var brackets = new[] { (0.3f, 0.35f), (0.5f, 0.5f), (float.NegativeInfinity, 0.1f), (0.9f, float.PositiveInfinity), (2f, 3f), (0.325f, 0.6f) };
        foreach (int n in new[] { 0, 1, 7, 8, 9, 63, 1029, 128 * 8 + 3, 16384 + 5 })
            foreach (var (lo0, hi0) in brackets)
                foreach (var (lo1, hi1) in brackets)
                    foreach (bool sums in new[] { true, false })
                    {
                        var v = Enumerable.Range(0, n).Select(_ => (float)Math.Round(r.NextDouble() * 40) / 40).ToArray();
                        if (n > 9) v[n / 2] = float.NaN;
                        var (first, second) = OrderStatistics.Scan(v, lo0, hi0, lo1, hi1, sums);
                        AssertSame(OrderStatistics.Scan(v, lo0, hi0, sums), first);
                        AssertSame(OrderStatistics.Scan(v, lo1, hi1, sums), second);
                    }

        static void AssertSame(OrderStatistics.ScanResult expected, OrderStatistics.ScanResult actual)
        {
            Assert.Equal((expected.Below, expected.AtLow, expected.AtHigh), (actual.Below, actual.AtLow, actual.AtHigh));
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected.SumBelow), BitConverter.DoubleToInt64Bits(actual.SumBelow));
            Assert.Equal(expected.Inside.Select(BitConverter.SingleToInt32Bits), actual.Inside.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void RadixSelect_EqualsQuickSelectBitwise()
    {
        // The sample's bracket ends: the radix select gives the quickselect's values bit for bit (ties, negatives, ±inf,
        // +0, subnormals, ranks sharing a bin or a value, the array's ends), and declines NaN and −0.
        var r = new Random(13);
        float[] specials = [0f, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, 1e-38f];
        for (int trial = 0; trial < 300; trial++)
        {
            int n = r.Next(1, trial < 100 ? 100 : 5000);
            int levels = r.Next(2) == 0 ? 7 : 1 << 20;
            var a = Enumerable.Range(0, n).Select(_ => r.Next(20) == 0 ? specials[r.Next(specials.Length)]
                : (float)(Math.Round((r.NextDouble() - (trial % 3 == 0 ? 0.5 : 0)) * levels) / levels * Math.Pow(10, r.Next(-5, 5)))).ToArray();
            if (a.Any(x => BitConverter.SingleToInt32Bits(x) == int.MinValue)) continue; // Math.Round of a tiny negative: −0
            var ks = Enumerable.Range(0, r.Next(1, 6)).Select(_ => r.Next(n)).Append(0).Append(n - 1).Order().ToArray();
            var expected = new float[ks.Length];
            var got = new float[ks.Length];
            OrderStatistics.QuickSelect((float[])a.Clone(), ks, expected);
            Assert.True(OrderStatistics.RadixSelect((float[])a.Clone(), ks, got));
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), got.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.False(OrderStatistics.RadixSelect([1f, -0f, 2f], [1], new float[1]));
        Assert.False(OrderStatistics.RadixSelect([1f, float.NaN, 2f], [1], new float[1]));
    }

    [Fact]
    public void CountEqual_MatchesFloatEquals()
    {
        // The vector count of a bracket's candidates equal to a tie value is float.Equals' count: tails, −0 = +0, NaN = NaN.
        var r = new Random(14);
        foreach (int n in new[] { 0, 1, 7, 8, 9, 63, 1029 })
        {
            var v = Enumerable.Range(0, n).Select(_ => r.Next(8) switch { 0 => -0f, 1 => float.NaN, int k => k / 4f }).ToArray();
            foreach (float value in new[] { 0f, -0f, float.NaN, 0.5f, 1.25f, 3f })
                Assert.Equal(v.Count(x => x.Equals(value)), OrderStatistics.CountEqual(v, value));
        }
    }

    [Fact]
    public void QuickSelect_MatchesSorting()
    {
        var r = new Random(5);
        for (int trial = 0; trial < 50; trial++)
        {
            int n = r.Next(1, 300);
            var a = Enumerable.Range(0, n).Select(_ => (float)r.Next(0, 20)).ToArray();
            int k = r.Next(n);
            var sorted = a.Order().ToArray();
            Assert.Equal(sorted[k], OrderStatistics.QuickSelect((float[])a.Clone(), k));
        }
    }

    [Fact]
    public void QuickSelect_ManyRanks_MatchesSorting()
    {
        // Several ascending ranks in one call (close pairs as the bracket ends are, repeats, the ends of the array), ties and NaN.
        var r = new Random(6);
        for (int trial = 0; trial < 60; trial++)
        {
            int n = r.Next(1, 3000);
            var a = Enumerable.Range(0, n).Select(_ => trial % 3 == 0 ? (float)r.Next(0, 7) : (float)r.NextDouble()).ToArray();
            if (trial % 5 == 0) a[r.Next(n)] = float.NaN;
            int k0 = r.Next(n);
            var ks = new[] { k0, Math.Min(n - 1, k0 + r.Next(0, 40)), r.Next(n), 0, n - 1, k0 }.Order().ToArray();
            var got = new float[ks.Length];
            OrderStatistics.QuickSelect((float[])a.Clone(), ks, got);
            var sorted = a.Order().ToArray(); // NaN first in this order; QuickSelect puts it last
            var nanLast = sorted.Where(x => !float.IsNaN(x)).Concat(sorted.Where(float.IsNaN)).ToArray();
            Assert.Equal(ks.Select(k => nanLast[k]), got);
        }
    }

    [Theory]
    [InlineData(7)]
    [InlineData(300)]
    [InlineData(1024)]
    [InlineData(5000)]
    public void Ranks_MatchTheStableSortReference(int n)
    {
        var ws = Ranking.Workspace.ForCurrentThread();
        foreach (var values in new[]
        {
            Quantised(n, 1, 16),                                                     // many ties
            MethodHarness.Random(n, 2),                                              // signed, distinct
            MethodHarness.Random(n, 3).Select(x => MathF.Abs(x) * 1e-6f).ToArray(),  // tiny magnitudes
            Enumerable.Repeat(0.5f, n).ToArray(),                                    // all equal
        })
        {
            var fast = new int[n];
            var reference = new int[n];
            Ranking.AscendingRanks(values, fast, ws);
            Ranking.AscendingRanksReference(values, reference);
            Assert.Equal(reference, fast);
        }
    }

    [Theory]
    [InlineData(1000, false)]
    [InlineData(1003, true)]
    [InlineData(5, true)]
    [InlineData(4099, false)]
    public void MergeChunk_MatchesItsScalarReference_ForEveryMaskKindAndMode(int n, bool elementScale)
    {
        const int m = 4;
        var b = MethodHarness.Random(n, 11);
        var x = new float[m][];
        for (int i = 0; i < m; i++) x[i] = MethodHarness.Random(n, 10 + i).Select((v, j) => b[j] + 0.5f * v).ToArray();
        // Boundary ties: several |x - b| equal to the range bounds.
        for (int j = 0; j < n; j += 37) x[1][j] = b[j] + 0.25f;
        for (int j = 5; j < n; j += 41) x[1][j] = b[j] - 0.375f;
        for (int j = 3; j < n; j += 11) x[3][j] = b[j];
        // The chunk starts at element 64 of a larger tensor: masks are indexed by the global element.
        var bits = new BitMask(n + 64);
        var words = bits.Words(0, n + 64);
        var rng = new CounterRandom(3, "t", 1);
        for (int w = 0; w < words.Length; w++) words[w] = rng.NextUInt64(w);
        var scaled = SparseMask.Range(n + 64, new MaskKey(0.1f, long.MinValue), MaskKey.Max, 0);
        scaled.Scale = 1.7f;
        using var perElement = new FloatBuffer(n + 64, zero: true);
        if (elementScale)
        {
            // DELLA's inverse keep probabilities: a positive per-element factor instead of the scalar one.
            var f = perElement.Slice(0, n + 64);
            for (int j = 0; j < f.Length; j++) f[j] = 1f / (0.3f + 0.001f * (j % 400));
            scaled.ElementScale = perElement;
        }
        var rangeMasks = new SparseMask?[] { null, SparseMask.Range(n + 64, new MaskKey(0.25f, 300), new MaskKey(0.375f, 700), 0), SparseMask.FromBits(bits, 0), scaled };
        // The magnitude top-k (no upper bound) with its tie index inside the chunk.
        var topK = new SparseMask?[] { null, SparseMask.Range(n + 64, new MaskKey(0.25f, 64 + n / 2), MaskKey.Max, 0), rangeMasks[2], rangeMasks[3] };
        float[] weights = [0.7f, 1f, -0.4f, 0.5f], flip = [1, 1, -1, 1];
        foreach (bool consensus in new[] { true, false })
            foreach (var basis in new[] { ElectionBasis.Weighted, ElectionBasis.Unweighted, ElectionBasis.Count })
                foreach (var (tie, count, normalize) in new[] { (1f, false, true), (-1f, true, false) })
                foreach (var masks in new[] { rangeMasks, topK })
                {
                    var b1 = (float[])b.Clone();
                    var b2 = (float[])b.Clone();
                    var ss1 = new double[m];
                    var ss2 = new double[m];
                    long c1 = TaskVectorKernels.MergeChunk(x, m, b1, 64, masks, weights, flip, consensus, basis, tie, count, normalize, 1.8f, 0.9f, ss1);
                    long c2 = TaskVectorKernels.MergeChunkReference(x, m, b2, 64, masks, weights, flip, consensus, basis, tie, count, normalize, 1.8f, 0.9f, ss2);
                    Assert.Equal(c2, c1);
                    for (int j = 0; j < n; j++) Assert.True(Math.Abs(b1[j] - b2[j]) <= 1e-6f * (1 + Math.Abs(b2[j])), $"[{j}] {b1[j]} vs {b2[j]} ({consensus}, {basis})");
                    for (int i = 0; i < m; i++) Assert.Equal(ss2[i], ss1[i], 3);
                    // Without diagnostics (the per-model specialised loops) the merged values are bit-identical, and the inputs untouched.
                    var b3 = (float[])b.Clone();
                    var before = x.Select(a => (float[])a.Clone()).ToArray();
                    TaskVectorKernels.MergeChunk(x, m, b3, 64, masks, weights, flip, consensus, basis, tie, count, normalize, 1.8f, 0.9f, new double[m], diagnostics: false);
                    Assert.Equal(b1.Select(BitConverter.SingleToInt32Bits), b3.Select(BitConverter.SingleToInt32Bits));
                    Assert.Equal(before, x);
                    // The per-model loops with diagnostics against the earlier fused loop: values, sums of squares and conflicts bit for bit.
                    var b4 = (float[])b.Clone();
                    var ss4 = new double[m];
                    long c4 = TaskVectorKernels.MergeChunkFused(x, m, b4, 64, masks, weights, flip, consensus, basis, tie, count, normalize, 1.8f, 0.9f, ss4);
                    Assert.Equal(c4, c1);
                    Assert.Equal(b4.Select(BitConverter.SingleToInt32Bits), b1.Select(BitConverter.SingleToInt32Bits));
                    Assert.Equal(ss4.Select(BitConverter.DoubleToInt64Bits), ss1.Select(BitConverter.DoubleToInt64Bits));
                }
    }

    [Theory]
    [InlineData(1000, 0)]
    [InlineData(1003, 64)]
    [InlineData(5, 64)]
    [InlineData(4096 + 13, 128)]
    public unsafe void MergeChunkInRegisters_MatchesTheBlockKernelsReference_BitForBit(int n, long start)
    {
        // Chunks whose models are masked alike run the register kernel, with or without diagnostics; the element-outer loop the
        // block kernel is checked against is the reference. Inputs are BF16-rounded values on a coarse grid, so |x − b| repeats and
        // lands on the mask bounds often.
        const int m = 3;
        float Grid(float v) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(MathF.Round(v * 16) / 16));
        var b = MethodHarness.Random(n, 21).Select(Grid).ToArray();
        var x = new float[m][];
        for (int i = 0; i < m; i++) x[i] = MethodHarness.Random(n, 30 + i).Select((v, j) => Grid(b[j] + 0.5f * v)).ToArray();
        for (int j = 0; j < n; j += 9) x[2][j] = b[j];                       // zero deltas (never agree)
        for (int j = 4; j < n; j += 17) x[1][j] = -x[0][j] + 2 * b[j];       // opposite deltas (election sums of 0 for equal weights)
        var bits = new ushort[m][];
        for (int i = 0; i < m; i++) bits[i] = x[i].Select(BFloat16Conversion.FromSingle).ToArray();
        long total = start + n + 64;
        var words = new BitMask(total);
        var rng = new CounterRandom(5, "r", 2);
        var all = words.Words(0, (int)total);
        for (int w = 0; w < all.Length; w++) all[w] = rng.NextUInt64(w);
        long mid = start + n / 2, end = start + n - n % 8;
        // Tie indices before, inside, at the last vector element, and after the chunk's vector part.
        long[] ties = [long.MinValue, start - 1, start, mid, end - 1, end, long.MaxValue];
        var maskSets = new List<SparseMask?[]> { new SparseMask?[m], Enumerable.Range(0, m).Select(_ => (SparseMask?)SparseMask.FromBits(words, 0)).ToArray() };
        foreach (long t in ties)
        {
            maskSets.Add(Enumerable.Range(0, m).Select(i => (SparseMask?)SparseMask.Range(total, new MaskKey(0.25f * (i + 1), i == 0 ? t : long.MinValue), MaskKey.Max, 0)).ToArray());
            maskSets.Add(Enumerable.Range(0, m).Select(i => (SparseMask?)SparseMask.Range(total, new MaskKey(0.0625f * i, t), new MaskKey(0.5f, i == 1 ? t : long.MaxValue), 0)).ToArray());
        }
        // Bounds at 0 (ties dropped: only non-zero deltas), at +inf, and a scaled mask.
        maskSets.Add(Enumerable.Range(0, m).Select(_ => (SparseMask?)SparseMask.Range(total, new MaskKey(0f, long.MaxValue), MaskKey.Max, 0)).ToArray());
        maskSets.Add(Enumerable.Range(0, m).Select(_ => (SparseMask?)SparseMask.Range(total, new MaskKey(0f, long.MaxValue), new MaskKey(float.PositiveInfinity, long.MinValue), 0)).ToArray());
        var scaled = SparseMask.Range(total, new MaskKey(0.125f, long.MinValue), MaskKey.Max, 0);
        scaled.Scale = 1.3f;
        maskSets.Add([scaled, scaled, scaled]);
        float[] weights = [0.5f, 0.5f, 0.75f], flip = [1, 1, 1];
        fixed (ushort* p0 = bits[0], p1 = bits[1], p2 = bits[2])
        {
            nint[] raw = [(nint)p0, (nint)p1, (nint)p2];
            foreach (var masks in maskSets)
                foreach (bool consensus in new[] { true, false })
                    foreach (var (tie, count, normalize) in new[] { (1f, false, true), (-1f, true, false), (0f, false, true) })
                    {
                        var expected = (float[])b.Clone();
                        var ssExpected = new double[m];
                        long conflictsExpected = TaskVectorKernels.MergeChunkFused(x, m, expected, start, masks, weights, flip, consensus, ElectionBasis.Weighted, tie, count,
                            normalize, 1.75f, 0.9f, ssExpected);
                        var withDiagnostics = (float[])b.Clone();
                        var ss = new double[m];
                        long conflicts = TaskVectorKernels.MergeChunk(x, m, withDiagnostics, start, masks, weights, flip, consensus, ElectionBasis.Weighted, tie, count,
                            normalize, 1.75f, 0.9f, ss);
                        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), withDiagnostics.Select(BitConverter.SingleToInt32Bits));
                        Assert.Equal(ssExpected.Select(BitConverter.DoubleToInt64Bits), ss.Select(BitConverter.DoubleToInt64Bits));
                        Assert.Equal(conflictsExpected, conflicts);
                        var f32 = (float[])b.Clone();
                        TaskVectorKernels.MergeChunk(x, m, f32, start, masks, weights, flip, consensus, ElectionBasis.Weighted, tie, count, normalize, 1.75f, 0.9f,
                            new double[m], diagnostics: false);
                        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), f32.Select(BitConverter.SingleToInt32Bits));
                        if (!TaskVectorKernels.CanDecodeBFloat16 || n % 8 != 0) continue;
                        var fromBits = (float[])b.Clone();
                        TaskVectorKernels.MergeChunkWithBFloat16Inputs(x, raw, m, fromBits, start, masks, weights, flip, consensus, ElectionBasis.Weighted, tie, count,
                            normalize, 1.75f, 0.9f, new double[m], diagnostics: false);
                        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), fromBits.Select(BitConverter.SingleToInt32Bits));
                    }
        }
    }

    [Fact]
    public void MaskBound_DecidesTiesOutsideTheRangeWithOneCompare()
    {
        // Low key (0.5, tie 100) over [100, 164): every tie kept, bound 0.5; over [20, 100): every tie dropped, the next float up.
        Assert.True(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: true, 100, 64, out float lo) && lo == 0.5f);
        Assert.True(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: true, 20, 80, out lo) && lo == MathF.BitIncrement(0.5f));
        Assert.False(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: true, 99, 8, out _));
        // High key (0.5, tie 100): ties kept up to index 100.
        Assert.True(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: false, 93, 8, out float hi) && hi == 0.5f);
        Assert.True(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: false, 101, 8, out hi) && hi == MathF.BitDecrement(0.5f));
        Assert.False(TaskVectorKernels.Bound(new MaskKey(0.5f, 100), lower: false, 94, 8, out _));
        // Dropped ties at 0 and -0: only values above 0 pass; infinities and NaN with dropped ties have no float bound.
        Assert.True(TaskVectorKernels.Bound(new MaskKey(-0f, long.MaxValue), lower: true, 0, 8, out lo) && lo == float.Epsilon);
        Assert.True(TaskVectorKernels.Bound(MaskKey.Max, lower: false, 0, 8, out hi) && hi == float.PositiveInfinity);
        Assert.False(TaskVectorKernels.Bound(new MaskKey(float.PositiveInfinity, long.MaxValue), lower: true, 0, 8, out _));
        Assert.False(TaskVectorKernels.Bound(new MaskKey(float.NaN, long.MinValue), lower: true, 0, 8, out _));
    }

    [Fact]
    public void SceEraseTerms_MatchSeparatePasses()
    {
        foreach (var (n, keyed) in new[] { (1003, true), (64, false), (7, true) }) CheckEraseTerms(n, keyed);
    }

    private static void CheckEraseTerms(int n, bool keyed)
    {
        var keys = Quantised(n, 5, 12);                      // many keys equal to the threshold
        var low = new MaskKey(keys[n / 2], 3 + n / 3);       // ties at the threshold cut by index
        var d0 = MethodHarness.Random(n, 70).Select((v, j) => j % 9 == 0 ? 0f : v).ToArray();
        var d1 = MethodHarness.Random(n, 71);
        float[] fast = new float[3 * n], slow = new float[3 * n];
        var df = new[] { (float[])d0.Clone(), (float[])d1.Clone() };
        var ds = new[] { (float[])d0.Clone(), (float[])d1.Clone() };
        for (int i = 0; i < 2; i++)
        {
            FuseSharp.Merging.Methods.Sce.EraseTerms(df[i], keys, 128, low, keyed, 0.3f + i, fast.AsSpan(0, n), fast.AsSpan(n, n), fast.AsSpan(2 * n, n), first: i == 0);
            FuseSharp.Merging.Methods.Sce.EraseTermsReference(ds[i], keys, 128, low, keyed, 0.3f + i, slow.AsSpan(0, n), slow.AsSpan(n, n), slow.AsSpan(2 * n, n), first: i == 0);
            Assert.Equal(ds[i].Select(BitConverter.SingleToInt32Bits), df[i].Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(slow, fast); // sums, maxima, minima (a max/min of ±0 may differ only in the zero's sign)
    }

    [Fact]
    public unsafe void MergeChunk_BFloat16InputsDecodedInTheKernel_MatchF32Inputs_Bitwise()
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        const int m = 3, n = 4104; // several blocks, whole vectors
        var b = MethodHarness.Random(n, 21).Select(v => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(v))).ToArray();
        var bits = new ushort[m][];
        var x = new float[m][];
        for (int i = 0; i < m; i++)
        {
            bits[i] = MethodHarness.Random(n, 22 + i).Select((v, j) => BFloat16Conversion.FromSingle(b[j] + 0.05f * v)).ToArray();
            x[i] = bits[i].Select(BFloat16Conversion.ToSingle).ToArray();
        }
        var dense = SparseMask.Range(n + 64, new MaskKey(MathF.Abs(x[0][n / 2] - b[n / 2]), 64 + n / 3), MaskKey.Max, 0);
        var masks = new SparseMask?[] { dense, null, SparseMask.Range(n + 64, new MaskKey(0.01f, long.MinValue), new MaskKey(0.04f, 900), 0) };
        float[] weights = [0.6f, -0.3f, 1f], flip = [1, 1, 1];
        fixed (ushort* p0 = bits[0], p1 = bits[1], p2 = bits[2])
        {
            var raw = new nint[] { (nint)p0, (nint)p1, (nint)p2 };
            foreach (bool consensus in new[] { true, false })
                foreach (bool diagnostics in new[] { true, false })
                {
                    var b1 = (float[])b.Clone();
                    var b2 = (float[])b.Clone();
                    var ss1 = new double[m];
                    var ss2 = new double[m];
                    long c1 = TaskVectorKernels.MergeChunk(x, m, b1, 64, masks, weights, flip, consensus, ElectionBasis.Weighted, 1f, false, true, 1.3f, 0.8f, ss1, diagnostics);
                    long c2 = TaskVectorKernels.MergeChunkWithBFloat16Inputs(new float[m][], raw, m, b2, 64, masks, weights, flip, consensus, ElectionBasis.Weighted, 1f, false, true, 1.3f, 0.8f, ss2, diagnostics);
                    Assert.Equal(c1, c2);
                    Assert.Equal(b1.Select(BitConverter.SingleToInt32Bits), b2.Select(BitConverter.SingleToInt32Bits));
                    Assert.Equal(ss1.Select(BitConverter.DoubleToInt64Bits), ss2.Select(BitConverter.DoubleToInt64Bits));
                }
        }
    }

    [Fact]
    public void SceVariance_CountsTheNonZeroVariances()
    {
        foreach (int n in new[] { 4099, 7 })
        {
            var d = Enumerable.Range(0, 3).Select(i => Quantised(n, 90 + i, 3)).ToArray();
            for (int j = 0; j < n; j += 5) { d[1][j] = d[0][j]; d[2][j] = d[0][j]; } // equal deltas: variance exactly 0
            var variance = new float[n];
            long nonzero = FuseSharp.Merging.Methods.Sce.Variance(d, 3, variance);
            Assert.Equal(variance.Count(v => v != 0), nonzero);
            Assert.True(nonzero < n);
        }
    }

    [Theory]
    [InlineData(4099, 3)]
    [InlineData(1003, 2)]
    [InlineData(5, 3)]
    public void SceEraseAndCombine_MatchesTheSeparateLoops_Bitwise(int n, int m)
    {
        var keys = Quantised(n, 5, 12);                      // many keys equal to the threshold
        var b = MethodHarness.Random(n, 80);
        var deltas = Enumerable.Range(0, m).Select(i => MethodHarness.Random(n, 81 + i).Select((v, j) => j % (7 + i) == 0 ? 0f : v).ToArray()).ToArray();
        float[] weights = [0.2f, 0.5f, 0.3f];
        foreach (var (keyed, zeroAll, floor, tieIndex) in new[] { (true, false, 1e-6f, 3L + n / 3), (true, false, 0f, long.MinValue), (false, false, 0f, 0L), (false, true, 1e-6f, 0L) })
        {
            var low = new MaskKey(keys[n / 2], tieIndex);
            var fast = new float[m + 4][];
            var slow = new float[m + 4][];
            for (int i = 0; i < m + 4; i++)
            {
                fast[i] = i < m ? (float[])deltas[i].Clone() : new float[n];
                slow[i] = i < m ? (float[])deltas[i].Clone() : new float[n];
            }
            var bf = (float[])b.Clone();
            var bs = (float[])b.Clone();
            long cf = FuseSharp.Merging.Methods.Sce.EraseAndCombine(fast, m, bf, keyed ? keys : default, 128, low, keyed, zeroAll, weights[..m], floor);
            for (int i = 0; i < m; i++)
            {
                if (zeroAll) slow[i].AsSpan().Clear();
                FuseSharp.Merging.Methods.Sce.EraseTerms(slow[i], keyed ? keys : default, 128, low, keyed, weights[i], slow[m + 1], slow[m + 2], slow[m + 3], first: i == 0);
            }
            long cs = TaskVectorKernels.Combine(slow, m, bs, slow[m + 1], weights[..m], Enumerable.Repeat(1f, m).ToArray(), 1f, countDivisor: false, normalize: true, lambda: 1f, floor, slow[m + 2], slow[m + 3]);
            Assert.Equal(cs, cf);
            Assert.Equal(bs.Select(BitConverter.SingleToInt32Bits), bf.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void Combine_MatchesItsScalarDefinition()
    {
        const int n = 203, m = 3;
        var d = new float[m][];
        for (int i = 0; i < m; i++) d[i] = MethodHarness.Random(n, 20 + i).Select((v, j) => j % 5 == i ? 0 : v).ToArray();
        var sum = MethodHarness.Random(n, 30).Select((v, j) => j % 11 == 0 ? 0 : v).ToArray();
        float[] weights = [0.5f, 1f, -0.3f], flip = [1, 1, -1];
        foreach (var (tie, count, normalize) in new[] { (1f, false, true), (-1f, true, false), (0f, false, true) })
        {
            var b = MethodHarness.Random(n, 40);
            var expected = (float[])b.Clone();
            var max = new float[n];
            var min = new float[n];
            TaskVectorKernels.Combine(d, m, b, sum, weights, flip, tie, count, normalize, 0.9f, 0f, max, min);
            for (int j = 0; j < n; j++)
            {
                var (mix, div) = TaskVectorKernels.CombineElement(d, m, j, sum[j], weights, flip, tie, count);
                expected[j] += 0.9f * (normalize ? mix / div : mix);
                Assert.Equal(expected[j], b[j], 5);
            }
        }
    }

    [Fact]
    public void Bernoulli_DrawsDependOnlyOnTheElement_AndHitTheProbability()
    {
        var rng = new UniformStream(new CounterRandom(7, "layer", 2));
        uint t = Sparsify.KeepThreshold(0.3);
        var d = new float[64 << 14];
        var whole = new ulong[4];
        Sparsify.FillBernoulli(rng, 0, t, d.AsSpan(0, 256), whole);
        var parts = new ulong[4];
        Sparsify.FillBernoulli(rng, 0, t, d.AsSpan(0, 128), parts.AsSpan(0, 2));
        Sparsify.FillBernoulli(rng, 128, t, d.AsSpan(128, 128), parts.AsSpan(2, 2));
        Assert.Equal(whole, parts);
        var big = new ulong[1 << 14];
        Sparsify.FillBernoulli(rng, 0, t, d, big);
        double kept = big.Sum(w => (double)ulong.PopCount(w)) / (64 << 14);
        Assert.InRange(kept, 0.3 - 0.003, 0.3 + 0.003);
    }

    /// <summary>
    /// The one-pass DARE mask and kept Σ|Δ| equal the separate passes (the per-element draws compared with the threshold,
    /// then MaskedSumOfMagnitudes) bit for bit: vector tails, chunks longer than one 128-vector flush block, a chunk across a 2^32 element boundary,
    /// zeros, −0, and thresholds keeping nothing or everything.
    /// </summary>
    [Theory]
    [InlineData(0L, 1)]
    [InlineData(64L, 67)]
    [InlineData(1L << 20, 16384)]
    [InlineData((1L << 32) - 1024, 3001)]
    [InlineData((1L << 33) - 64, 1029)]
    public void Bernoulli_OnePassMaskAndKeptSum_MatchSeparatePasses(long start, int n)
    {
        var rng = new UniformStream(new CounterRandom(9, "dare", n));
        var d = MethodHarness.Random(n, n);
        for (int j = 0; j < n; j += 13) d[j] = j % 26 == 0 ? 0f : -0f;
        foreach (uint t in new[] { Sparsify.KeepThreshold(0.5), Sparsify.KeepThreshold(0.1), 0u, uint.MaxValue })
        {
            var expectedWords = new ulong[(n + 63) / 64];
            for (int j = 0; j < n; j++) if (rng.At(start + j) < t) expectedWords[j >> 6] |= 1UL << (j & 63);
            double expectedSum = TaskVectorKernels.MaskedSumOfMagnitudes(d, expectedWords);
            var words = Enumerable.Repeat(0x5555_5555_5555_5555UL, expectedWords.Length).ToArray(); // stale bits are cleared
            double sum = Sparsify.FillBernoulli(rng, start, t, d, words);
            Assert.Equal(expectedWords, words);
            Assert.Equal(BitConverter.DoubleToInt64Bits(expectedSum), BitConverter.DoubleToInt64Bits(sum));
        }
    }

    [Theory]
    [InlineData(2, 1003)]
    [InlineData(4, 20000)]
    [InlineData(5, 333)]
    public void GramAccumulate_MatchesDotProducts(int m, int n)
    {
        var x = Enumerable.Range(0, m).Select(i => MethodHarness.Random(n, 60 + i)).ToArray();
        var acc = new double[m * (m + 1) / 2];
        FuseSharp.Merging.Methods.Gram.Accumulate(x, m, n, acc);
        int k = 0;
        for (int a = 0; a < m; a++)
            for (int b = a; b < m; b++)
            {
                double exact = 0;
                for (int j = 0; j < n; j++) exact += (double)x[a][j] * x[b][j];
                Assert.True(Math.Abs(acc[k] - exact) <= 1e-4 * (1 + Math.Abs(exact)), $"({a},{b}): {acc[k]} vs {exact}");
                k++;
            }
    }

    [Fact]
    public void UniformStream_VectorFillMatchesScalar_AndIsUniform()
    {
        var rng = new UniformStream(new CounterRandom(5, "t", 3));
        var u = new uint[1000];
        long start = (1L << 32) - 500; // crosses a 2^32 boundary
        rng.Fill(start, u);
        for (int j = 0; j < u.Length; j++) Assert.Equal(rng.At(start + j), u[j]);
        // The keep bits made as the draws are (Sparsify.FillBernoulli): whole words, short tails, after the 2^32 boundary
        // (words across it: Bernoulli_OnePassMaskAndKeptSum_MatchSeparatePasses).
        uint t = Sparsify.KeepThreshold(0.4);
        foreach (var (first, length) in new[] { (0L, 64), (640L, 61), (1L << 32, 5) })
        {
            ulong expected = 0;
            for (int j = 0; j < length; j++) if (rng.At(first + j) < t) expected |= 1UL << j;
            var word = new ulong[1];
            Sparsify.FillBernoulli(rng, first, t, new float[length], word);
            Assert.Equal(expected, word[0]);
        }
        var big = new uint[1 << 20];
        rng.Fill(0, big);
        var bins = new int[16];
        foreach (var x in big) bins[x >> 28]++;
        Assert.All(bins, b => Assert.InRange(b, (1 << 16) - 1500, (1 << 16) + 1500)); // within ~6 sigma
        Assert.NotEqual(big[0], new UniformStream(new CounterRandom(5, "t", 4)).At(0));
    }

    [Fact]
    public void ChunkedReductions_DoNotDependOnTheThreadCount()
    {
        var values = MethodHarness.Random(1_000_003, 50);
        double[] Sum() => Chunked.Reduce(values.Length, 2, default, (start, length, sc, acc) =>
        {
            var v = values.AsSpan((int)start, length);
            acc[0] += System.Numerics.Tensors.TensorPrimitives.Sum(v);
            acc[1] += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(v);
        });
        int saved = Parallelism.MaxThreads;
        try
        {
            Parallelism.MaxThreads = 1;
            var one = Sum();
            Parallelism.MaxThreads = 8;
            Assert.Equal(one, Sum());
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
    }

    /// <summary>WIDEN's one-pass BF16 kernels (base decoded once, all inputs per vector) against the F32 kernels on the decoded values, bit for bit.</summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 37)]
    [InlineData(3, 1024)]
    [InlineData(5, 203)]
    [InlineData(0, 9)]
    public unsafe void WidenBFloat16Kernels_MatchTheF32Kernels_Bitwise(int m, int length)
    {
        const int offset = 3;
        static ushort[] Bits(float[] v) => v.Select(BFloat16Conversion.FromSingle).ToArray();
        static float[] Decoded(ushort[] v) => v.Select(BFloat16Conversion.ToSingle).ToArray();
        var bBits = Bits(MethodHarness.Random(length, 2));
        var xBits = Enumerable.Range(0, m).Select(i => Bits(MethodHarness.Random(length, 20 + i).Select((v, j) => BFloat16Conversion.ToSingle(bBits[j]) + 0.01f * v).ToArray())).ToArray();
        // Signs, zeros, subnormals and a wide exponent range, in the base and in each input.
        var r = new Random(length + m);
        ushort Wide() => BFloat16Conversion.FromSingle((float)(Math.Pow(2, -30 * r.NextDouble()) * (r.NextDouble() - 0.5)));
        foreach (var bits in xBits.Prepend(bBits))
        {
            for (int j = 0; j < length; j += 3) bits[j] = Wide();
            bits[length / 2] = (ushort)(r.Next(2) << 15 | 1); // a subnormal
            bits[length - 1] = (ushort)(r.Next(2) << 15);      // ±0
        }
        var b = Decoded(bBits);
        var x = xBits.Select(Decoded).ToArray();
        var handles = xBits.Select(a => System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
        try
        {
            var xs = handles.Select(h => h.AddrOfPinnedObject()).ToArray();
            var f = Enumerable.Range(0, 1 + 2 * m).Select(k => MethodHarness.Random(offset + length, 60 + k)).ToArray();
            var expected = f.Select(a => (float[])a.Clone()).ToArray();
            FuseSharp.Merging.Methods.Widen.AccumulateColumnStatistics(b, x, expected, offset, length);
            fixed (ushort* bp = bBits)
                FuseSharp.Merging.Methods.Widen.AccumulateStatisticsOfBFloat16(bp, xs, f, offset, length);
            for (int k = 0; k < f.Length; k++) Assert.Equal(expected[k].Select(BitConverter.SingleToInt32Bits), f[k].Select(BitConverter.SingleToInt32Bits));
            var w = Enumerable.Range(0, m).Select(i => MethodHarness.Random(offset + length, 80 + i)).ToArray();
            foreach (int step in new[] { 0, 1 })
            {
                var want = new float[length];
                FuseSharp.Merging.Methods.Widen.WeightedDeltas(b, x, w, offset, step, want.AsSpan(0, length));
                var got = new float[length];
                fixed (ushort* bp = bBits)
                    FuseSharp.Merging.Methods.Widen.WeightedDeltasOfBFloat16(bp, xs, w, offset, step, got);
                Assert.Equal(want.Select(BitConverter.SingleToInt32Bits), got.Select(BitConverter.SingleToInt32Bits));
            }
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 37)]
    [InlineData(4, 1024)]
    [InlineData(0, 9)]
    public void WidenKernels_MatchTheTensorPrimitivesSequence_Bitwise(int m, int length)
    {
        const int offset = 5;
        var b = MethodHarness.Random(length, 1);
        var x = Enumerable.Range(0, m).Select(i => MethodHarness.Random(length, 10 + i).Select((v, j) => b[j] + 0.01f * v).ToArray()).ToArray();
        // Column statistics: f[0] += b², f[1+i] += x_i², f[1+m+i] += x_i·b.
        var f = Enumerable.Range(0, 1 + 2 * m).Select(k => MethodHarness.Random(offset + length, 50 + k)).ToArray();
        var expected = f.Select(a => (float[])a.Clone()).ToArray();
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(b, b, expected[0].AsSpan(offset, length), expected[0].AsSpan(offset, length));
        for (int i = 0; i < m; i++)
        {
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x[i], x[i], expected[1 + i].AsSpan(offset, length), expected[1 + i].AsSpan(offset, length));
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x[i], b, expected[1 + m + i].AsSpan(offset, length), expected[1 + m + i].AsSpan(offset, length));
        }
        FuseSharp.Merging.Methods.Widen.AccumulateColumnStatistics(b, x, f, offset, length);
        for (int k = 0; k < f.Length; k++) Assert.Equal(expected[k].Select(BitConverter.SingleToInt32Bits), f[k].Select(BitConverter.SingleToInt32Bits));
        // Weighted deltas, per-column and per-input weights: b += (x_i − b₀) ⊙ w_i, input by input.
        var w = Enumerable.Range(0, m).Select(i => MethodHarness.Random(offset + length, 70 + i)).ToArray();
        foreach (int step in new[] { 0, 1 })
        {
            var want = (float[])b.Clone();
            var d = new float[length];
            for (int i = 0; i < m; i++)
            {
                System.Numerics.Tensors.TensorPrimitives.Subtract(x[i], b, d);
                if (step == 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(d, w[i][offset], want, want);
                else System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(d, w[i].AsSpan(offset, length), want, want);
            }
            var got = new float[length];
            FuseSharp.Merging.Methods.Widen.WeightedDeltas(b, x, w, offset, step, got.AsSpan(0, length));
            Assert.Equal(want.Select(BitConverter.SingleToInt32Bits), got.Select(BitConverter.SingleToInt32Bits));
        }
    }

    /// <summary>
    /// The per-row sums DELLA now takes over |Δ| (the buffer the signed deltas used to occupy) equal the sums over the
    /// signed deltas bit for bit: same buffer, same accumulation order, |·| idempotent. Odd sizes cover the vector tails.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(67)]
    [InlineData(1001)]
    [InlineData(4099)]
    public void MagnitudeSums_OverAbsoluteDeltas_MatchSignedDeltas(int n)
    {
        var r = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var b = Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5) * 0.9f).ToArray();
        var words = Enumerable.Range(0, (n + 63) / 64).Select(_ => (ulong)r.NextInt64() ^ (ulong)r.NextInt64() << 1).ToArray();
        var d = new float[n];
        System.Numerics.Tensors.TensorPrimitives.Subtract(x, b, d);
        float total = System.Numerics.Tensors.TensorPrimitives.SumOfMagnitudes(d);
        double kept = TaskVectorKernels.MaskedSumOfMagnitudes(d, words);
        MethodHelpers.AbsoluteDifference(x, b, d); // in place: the same buffer, so the same alignment
        Assert.Equal(BitConverter.SingleToInt32Bits(total), BitConverter.SingleToInt32Bits(System.Numerics.Tensors.TensorPrimitives.SumOfMagnitudes(d)));
        Assert.Equal(BitConverter.DoubleToInt64Bits(kept), BitConverter.DoubleToInt64Bits(TaskVectorKernels.MaskedSumOfMagnitudes(d, words)));
    }

    /// <summary>
    /// DELLA masks from the one-pass |x − b| producer equal those from separate Subtract and Abs passes: bits, kept
    /// counts, L1 scales and per-element inverse probabilities, for word-aligned and unaligned rows.
    /// </summary>
    [Theory]
    [InlineData(3, 67)]
    [InlineData(4, 192)]
    [InlineData(2, 1001)]
    public void Della_MasksFromMagnitudeProducer_MatchSeparatePasses(int rows, int cols)
    {
        long n = (long)rows * cols;
        int m = 2;
        var r = new Random(rows * 7919 + cols);
        var bs = Enumerable.Range(0, (int)n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var xs = Enumerable.Range(0, m).Select(_ => bs.Select(v => v + (float)(r.NextDouble() - 0.5) * 0.01f).ToArray()).ToArray();
        void Read(long start, int length, ChunkScratch sc, bool magnitudes)
        {
            var baseBuf = sc.Get(m, length);
            bs.AsSpan((int)start, length).CopyTo(baseBuf);
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                xs[i].AsSpan((int)start, length).CopyTo(d);
                if (magnitudes) MethodHelpers.AbsoluteDifference(d, baseBuf, d);
                else System.Numerics.Tensors.TensorPrimitives.Subtract(d, baseBuf, d);
            }
        }
        foreach (var mode in new[] { RescaleMode.L1Norm, RescaleMode.InverseProbability, RescaleMode.InverseDensity })
        {
            var settings = Enumerable.Range(0, m).Select(i => new SparsifySettings(SparsifyMethod.DellaMagprune, 0.4 + 0.1 * i, 0, 0.15, true, mode,
                TopKTies.Exact, BreadcrumbsSlice.Intended)).ToList();
            var buffers = new List<FloatBuffer>();
            SparseMask[] Build(ChunkProducer? abs) => Sparsify.Build(n, cols, settings, (s, l, sc) => Read(s, l, sc, false),
                i => new CounterRandom(3, "della", i), len => { var f = new FloatBuffer(len, zero: true); buffers.Add(f); return f; },
                _ => { }, CancellationToken.None, abs);
            var separate = Build(null);
            var fused = Build((s, l, sc) => Read(s, l, sc, true));
            AssertSameMasks(separate, fused, mode == RescaleMode.InverseProbability);
            foreach (var f in buffers) f.Dispose();
        }
    }

    [Fact]
    public void Bernoulli_MasksFromMagnitudeProducer_MatchSignedDeltas()
    {
        // DARE's pass only sums magnitudes, so it may take the |Δ| producer: masks and L1 rescale factors bitwise equal.
        const long n = 2 * Chunked.Size + 1003;
        int m = 2;
        var r = new Random(17);
        var xs = Enumerable.Range(0, m).Select(_ => Enumerable.Range(0, (int)n).Select(_ => (float)(r.NextDouble() - 0.5) * 0.02f).ToArray()).ToArray();
        void Produce(long start, int length, ChunkScratch sc, bool magnitudes)
        {
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                xs[i].AsSpan((int)start, length).CopyTo(d);
                if (magnitudes) System.Numerics.Tensors.TensorPrimitives.Abs(d, d);
            }
        }
        foreach (var mode in new[] { RescaleMode.L1Norm, RescaleMode.InverseDensity })
        {
            var settings = Enumerable.Range(0, m).Select(i => new SparsifySettings(SparsifyMethod.Bernoulli, 0.3 + 0.4 * i, 0, 0, true, mode,
                TopKTies.Exact, BreadcrumbsSlice.Intended)).ToList();
            SparseMask[] Build(ChunkProducer? abs) => Sparsify.Build(n, n, settings, (s, l, sc) => Produce(s, l, sc, false),
                i => new CounterRandom(5, "dare", i), _ => throw new InvalidOperationException("no factors for DARE"), _ => { }, CancellationToken.None, abs);
            var signed = Build(null);
            var magnitudes = Build((s, l, sc) => Produce(s, l, sc, true));
            AssertSameMasks(signed, magnitudes, elementScales: false);
        }
    }

    /// <summary>Kept counts, scale factors, mask bits and (with <paramref name="elementScales"/>) per-element factors, bitwise.</summary>
    private static void AssertSameMasks(SparseMask[] expected, SparseMask[] actual, bool elementScales)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Kept, actual[i].Kept);
            Assert.Equal(BitConverter.SingleToInt32Bits(expected[i].Scale), BitConverter.SingleToInt32Bits(actual[i].Scale));
            Assert.Equal(expected[i].Bits!.RawWords, actual[i].Bits!.RawWords);
            if (elementScales)
                Assert.Equal(expected[i].ElementScale!.Slice(0, (int)expected[i].Count).ToArray(), actual[i].ElementScale!.Slice(0, (int)actual[i].Count).ToArray());
        }
    }
}
