using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FuseSharp.Merging;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// SCE's fused kernels: the calculate pass's sums of squares in registers against TensorPrimitives (bitwise, every
/// length class of its summation order), the kernels over stored BF16 bits against the same values as F32 rows, and
/// whole merges of BF16 checkpoints against the same values stored as F32 (outputs and NaN/Inf messages).
/// </summary>
public sealed class SceKernelTests
{
    private static float Bf(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));

    /// <summary>Keys with many exact ties (quantised), deltas with exact zeros.</summary>
    private static (float[] Keys, float[][] Deltas) Data(int n, int m, int seed)
    {
        var r = new Random(seed);
        var keys = Enumerable.Range(0, n).Select(_ => (float)Math.Round(r.NextDouble() * 9) / 9).ToArray();
        var d = Enumerable.Range(0, m).Select(i => MethodHarness.Random(n, seed + 1 + i).Select((v, j) => j % (5 + i) == 0 ? 0f : v).ToArray()).ToArray();
        return (keys, d);
    }

    /// <summary>The four select modes: keyed with a tie index inside and before the chunk, no mask, everything dropped.</summary>
    private static IEnumerable<(bool Keyed, bool ZeroAll, MaskKey Low)> Modes(float[] keys, int n) =>
    [
        (true, false, new MaskKey(keys[n / 2], 128 + n / 3)),
        (true, false, new MaskKey(keys[n / 3], long.MinValue)),
        (false, false, MaskKey.Min),
        (false, true, MaskKey.Min),
    ];

    [Theory]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(72)]
    [InlineData(79)]
    [InlineData(136)]
    [InlineData(1003)]
    [InlineData(16384)]
    public void SquaredSums_MatchTensorPrimitivesSumOfSquares_Bitwise(int n)
    {
        foreach (int m in new[] { 1, 3 })
        {
            var (keys, deltas) = Data(n, m, 7 * n + m);
            foreach (var (keyed, zeroAll, low) in Modes(keys, n))
            {
                var expected = new double[2 * m];
                for (int i = 0; i < m; i++)
                {
                    var d = (float[])deltas[i].Clone();
                    expected[m + i] += TensorPrimitives.SumOfSquares(d);
                    if (zeroAll) Array.Clear(d);
                    else if (keyed) Sce.KeepAtLeast(d, keys, 128, low);
                    expected[i] += TensorPrimitives.SumOfSquares(d);
                }
                var rows = deltas.Select(x => (float[])x.Clone()).ToArray();
                var actual = new double[2 * m];
                Sce.SquaredSums(new RowDeltas(rows), rows, m, n, keyed ? keys : default, 128, low, keyed, zeroAll, actual);
                Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), actual.Select(BitConverter.DoubleToInt64Bits));
            }
        }
    }

    [Theory]
    [InlineData(4099, 3)]
    [InlineData(72, 2)]
    [InlineData(5, 3)]
    public unsafe void Bf16Bits_GiveTheKernelsTheSameValuesAsF32Rows_Bitwise(int n, int m)
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        var r = new Random(n + m);
        var baseBits = GC.AllocateArray<ushort>(n, pinned: true);
        var inputBits = Enumerable.Range(0, m).Select(_ => GC.AllocateArray<ushort>(n, pinned: true)).ToArray();
        for (int j = 0; j < n; j++)
        {
            float b = (float)(r.NextDouble() - 0.5);
            baseBits[j] = BFloat16Conversion.FromSingle(b);
            for (int i = 0; i < m; i++)
                inputBits[i][j] = BFloat16Conversion.FromSingle(j % 7 == i ? b : j % 13 == 0 ? -b : b + 0.01f * (float)(r.NextDouble() - 0.5));
        }
        var baseValues = baseBits.Select(BFloat16Conversion.ToSingle).ToArray();
        var rows = inputBits.Select(x => x.Select(BFloat16Conversion.ToSingle).Select((v, j) => v - baseValues[j]).ToArray()).ToArray();
        var bits = new BFloat16Deltas(inputBits.Select(x => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(x))).ToArray(),
            (ushort*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(baseBits)));

        var v1 = new float[n];
        var v2 = new float[n];
        Assert.Equal(Sce.Variance(rows, m, v1), Sce.Variance(bits, m, v2, out bool finite));
        Assert.True(finite);
        Assert.Equal(v1.Select(BitConverter.SingleToInt32Bits), v2.Select(BitConverter.SingleToInt32Bits));

        var keys = v1;
        float[] weights = [0.2f, 0.5f, 0.3f];
        foreach (var (keyed, zeroAll, low) in Modes(keys, n))
        {
            var s1 = new double[2 * m];
            var s2 = new double[2 * m];
            var scratch = Enumerable.Range(0, m).Select(_ => new float[n]).ToArray();
            var rowsCopy = rows.Select(x => (float[])x.Clone()).ToArray();
            Sce.SquaredSums(new RowDeltas(rowsCopy), rowsCopy, m, n, keyed ? keys : default, 128, low, keyed, zeroAll, s1);
            Sce.SquaredSums(bits, scratch, m, n, keyed ? keys : default, 128, low, keyed, zeroAll, s2);
            Assert.Equal(s1.Select(BitConverter.DoubleToInt64Bits), s2.Select(BitConverter.DoubleToInt64Bits));

            foreach (float floor in new[] { 0f, 1e-6f })
            {
                var d1 = Enumerable.Range(0, m + 4).Select(i => i < m ? (float[])rows[i].Clone() : new float[n]).ToArray();
                var d2 = Enumerable.Range(0, m + 4).Select(_ => new float[n]).ToArray();
                var b1 = (float[])baseValues.Clone();
                var b2 = new float[n];
                long c1 = Sce.EraseAndCombine(d1, m, b1, keyed ? keys : default, 128, low, keyed, zeroAll, weights[..m], floor);
                long c2 = Sce.EraseAndCombine(bits, d2, m, b2, keyed ? keys : default, 128, low, keyed, zeroAll, weights[..m], floor);
                Assert.Equal(c1, c2);
                Assert.Equal(b1.Select(BitConverter.SingleToInt32Bits), b2.Select(BitConverter.SingleToInt32Bits));
            }
        }
        // The kernels read the arrays through raw pointers: pinned arrays are not rooted, so keep them alive to here.
        GC.KeepAlive(baseBits);
        GC.KeepAlive(inputBits);
    }

    /// <summary>
    /// The selection over keys read in place (<see cref="ChunkView"/>) finds what the producer that copies them into scratch
    /// finds: values, counts below and equal, and the index of every tie at the threshold; sampled brackets and the direct path.
    /// </summary>
    [Theory]
    [InlineData(300_000, 7)]
    [InlineData(5_000, 3)]
    public void SelectOnAView_MatchesTheCopyingProducer(int n, int levels)
    {
        var r = new Random(n);
        var keys = Enumerable.Range(0, n).Select(_ => r.Next(10) == 0 ? 0f : (float)r.Next(levels * 100) / 100).ToArray(); // heavy ties
        long[] ranks = [n - n / 10, n / 2, 0, n - 1];
        var copied = OrderStatistics.Select(n, ranks, (start, length, sc) => keys.AsSpan((int)start, length).CopyTo(sc.Get(0, length)), 99, default, sums: false);
        ChunkView view = (start, length, _) => keys.AsSpan((int)start, length);
        var viewed = OrderStatistics.Select(n, ranks, view, 99, default, sums: false);
        for (int k = 0; k < ranks.Length; k++)
        {
            var (a, b) = (copied.Results[0][k], viewed.Results[0][k]);
            Assert.Equal((a.Rank, a.Value, a.Less, a.Equal), (b.Rank, b.Value, b.Less, b.Equal));
            foreach (long q in new[] { 0, a.Equal / 2, a.Equal - 1 })
                Assert.Equal(copied.IndexOfEqual(0, ranks[k], q), viewed.IndexOfEqual(0, ranks[k], q));
        }
    }

    /// <summary>The variance kernel tells whether every variance is finite: NaN, ±Inf or an overflowing spread in a vector lane or the tail.</summary>
    [Theory]
    [InlineData(3, float.NaN)]
    [InlineData(17, float.PositiveInfinity)]
    [InlineData(20, float.NegativeInfinity)]
    [InlineData(9, 3e38f)]
    [InlineData(21, 3e38f)]
    [InlineData(-1, 0f)]
    public void Variance_TellsWhetherEveryVarianceIsFinite(int at, float bad)
    {
        const int n = 22, m = 3; // two vectors and a tail of 6
        var d = Enumerable.Range(0, m).Select(i => MethodHarness.Random(n, 30 + i)).ToArray();
        if (at >= 0)
        {
            d[1][at] = bad;
            d[2][at] = -bad;
        }
        var variance = new float[n];
        Sce.Variance(new RowDeltas(d), m, variance, out bool finite);
        Assert.Equal(variance.All(float.IsFinite), finite);
        Assert.Equal(at < 0, finite);
    }

    /// <summary>
    /// The erase pass where most vectors have no selected lane (a high threshold, as at select_topk 0.1), with ±0 in the base
    /// there (b + 0 turns -0 into +0): the register kernel, also over BF16 bits, against the separate loops, bit for bit (any
    /// shortcut for wholly masked vectors must keep those bits).
    /// </summary>
    [Theory]
    [InlineData(4099, 3)]
    [InlineData(1003, 2)]
    public unsafe void EraseWithFewSelected_MatchesTheSeparateLoops_Bitwise(int n, int m)
    {
        var r = new Random(n + m);
        var keys = Enumerable.Range(0, n).Select(_ => r.Next(40) == 0 ? 1f : (float)Math.Round(r.NextDouble() * 9) / 10).ToArray();
        var baseBits = GC.AllocateArray<ushort>(n, pinned: true);
        var inputBits = Enumerable.Range(0, m).Select(_ => GC.AllocateArray<ushort>(n, pinned: true)).ToArray();
        for (int j = 0; j < n; j++)
        {
            float b = j % 3 == 0 ? (j % 2 == 0 ? -0f : 0f) : (float)(r.NextDouble() - 0.5);
            baseBits[j] = BFloat16Conversion.FromSingle(b);
            for (int i = 0; i < m; i++) inputBits[i][j] = BFloat16Conversion.FromSingle(j % 5 == i ? b : b + 0.05f * (float)(r.NextDouble() - 0.5));
        }
        var baseValues = baseBits.Select(BFloat16Conversion.ToSingle).ToArray();
        var rows = inputBits.Select(x => x.Select(BFloat16Conversion.ToSingle).Select((v, j) => v - baseValues[j]).ToArray()).ToArray();
        var bits = new BFloat16Deltas(inputBits.Select(x => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(x))).ToArray(),
            (ushort*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(baseBits)));
        float[] weights = [0.2f, 0.5f, 0.3f];
        // Keys of 1 (one in 40) above the threshold; a tie index inside the chunk, and none (every key at 1 kept).
        foreach (var low in new[] { new MaskKey(1f, 128 + n / 2), new MaskKey(1f, long.MinValue) })
            foreach (float floor in new[] { 0f, 1e-6f })
            {
                var slow = Enumerable.Range(0, m + 4).Select(i => i < m ? (float[])rows[i].Clone() : new float[n]).ToArray();
                for (int i = 0; i < m; i++)
                    Sce.EraseTerms(slow[i], keys, 128, low, true, weights[i], slow[m + 1], slow[m + 2], slow[m + 3], first: i == 0);
                var bs = (float[])baseValues.Clone();
                long cs = TaskVectorKernels.Combine(slow, m, bs, slow[m + 1], weights[..m], Enumerable.Repeat(1f, m).ToArray(), 1f, countDivisor: false,
                    normalize: true, lambda: 1f, floor, slow[m + 2], slow[m + 3]);
                Assert.Contains(Enumerable.Range(0, n), j => float.IsNegative(baseValues[j]) && baseValues[j] == 0 && BitConverter.SingleToInt32Bits(bs[j]) == 0);

                var fast = Enumerable.Range(0, m + 4).Select(i => i < m ? (float[])rows[i].Clone() : new float[n]).ToArray();
                var bf = (float[])baseValues.Clone();
                Assert.Equal(cs, Sce.EraseAndCombine(fast, m, bf, keys, 128, low, true, false, weights[..m], floor));
                Assert.Equal(bs.Select(BitConverter.SingleToInt32Bits), bf.Select(BitConverter.SingleToInt32Bits));
                var bb = new float[n];
                Assert.Equal(cs, Sce.EraseAndCombine(bits, Enumerable.Range(0, m + 4).Select(_ => new float[n]).ToArray(), m, bb, keys, 128, low, true, false, weights[..m], floor));
                Assert.Equal(bs.Select(BitConverter.SingleToInt32Bits), bb.Select(BitConverter.SingleToInt32Bits));
            }
        // The kernels read the arrays through raw pointers: pinned arrays are not rooted, so keep them alive to here.
        GC.KeepAlive(baseBits);
        GC.KeepAlive(inputBits);
    }

    /// <summary>
    /// Merges the same values stored as F32 (checked reads) and as BF16 (decoded in the kernels) with sce and
    /// <paramref name="parameters"/>: per dtype the output tensors, or the merge's error (and then no output folder).
    /// Tensors: [3700, 37] (eight whole chunks and a tail of 5828; more than <see cref="OrderStatistics.DirectThreshold"/>, so the
    /// selection samples and brackets instead of collecting every variance), [5, 3] and [37]; <paramref name="edit"/> changes model k.
    /// </summary>
    private static List<(Dictionary<string, (float[] Values, long[] Shape)>? Output, MergeException? Error)> MergeBothWays(string parameters,
        Action<int, Dictionary<string, (float[] Values, long[] Shape)>>? edit = null)
    {
        var shapes = new (string Name, long[] Shape)[] { ("model.embed_tokens.weight", [3700, 37]), ("model.layers.0.self_attn.q_proj.weight", [5, 3]), ("model.layers.0.input_layernorm.weight", [37]) };
        var r = new Random(5);
        var models = new List<Dictionary<string, (float[] Values, long[] Shape)>>();
        for (int k = 0; k < 4; k++)
            models.Add(shapes.ToDictionary(s => s.Name, s =>
            {
                var v = new float[s.Shape.Aggregate(1L, (a, b) => a * b)];
                for (int i = 0; i < v.Length; i++)
                {
                    float x = (float)(r.NextDouble() * 2 - 1);
                    v[i] = Bf(k == 0 ? x : i % 11 == k ? models[0][s.Name].Values[i] : models[0][s.Name].Values[i] + 0.05f * x);
                }
                return (v, s.Shape);
            }));
        for (int k = 0; k < models.Count; k++) edit?.Invoke(k, models[k]);
        var root = TestModels.TempDir("sce-bf16");
        var results = new List<(Dictionary<string, (float[] Values, long[] Shape)>?, MergeException?)>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            // The same folders each time: messages name the model by its path.
            foreach (var d in Directory.GetDirectories(root)) Directory.Delete(d, true);
            var names = models.Select((m, k) => TestModels.WriteModel(Path.Combine(root, $"m{k}"), m, dtype)).ToList();
            var yaml = $"merge_method: sce\nbase_model: {names[0]}\nmodels:\n" + string.Concat(names.Skip(1).Select(n => $"  - model: {n}\n")) + $"parameters:\n  {parameters}\ndtype: float32\n";
            var output = Path.Combine(root, "out");
            using var plan = FuseSharp.Merging.Planning.MergePlanner.Plan(FuseSharp.Merging.Config.MergeConfigParser.Parse(yaml), new MergeOptions());
            try
            {
                MergeExecutor.Run(plan, output);
                results.Add((TestModels.Read(output), null));
            }
            catch (MergeException e)
            {
                Assert.False(Directory.Exists(output));
                results.Add((null, e));
            }
        }
        Directory.Delete(root, true);
        return results;
    }

    [Theory]
    [InlineData("select_topk: 0.3")]
    [InlineData("select_topk: 0.3\n  sce_mask_mode: weights_only")]
    [InlineData("select_topk: 1.0")]
    public void Bf16Checkpoints_MergeToTheSameBitsAsF32Checkpoints(string parameters)
    {
        var results = MergeBothWays(parameters);
        var (f32, bf16) = (results[0].Output!, results[1].Output!);
        foreach (var (name, (values, _)) in f32)
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), bf16[name].Values.Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>The variance pass screens the inputs with select_topk &lt; 1, the calculate pass without.</summary>
    [Theory]
    [InlineData("select_topk: 0.3", 1, 300, float.NaN)]
    [InlineData("select_topk: 0.3", 0, 16390, float.PositiveInfinity)]
    [InlineData("select_topk: 1.0", 2, 25899, float.NegativeInfinity)]
    [InlineData("select_topk: 1.0", 0, 17, float.NaN)]
    public void NonFiniteBf16Input_FailsWithTheMessageOfTheCheckedPath(string parameters, int model, int element, float bad)
    {
        var results = MergeBothWays(parameters, (k, t) =>
        {
            if (k == model) t["model.embed_tokens.weight"].Values[element] = bad;
        });
        var (f32, bf16) = (results[0].Error!, results[1].Error!);
        Assert.Equal("model.embed_tokens.weight", bf16.Tensor);
        Assert.Equal(f32.Message, bf16.Message);
        Assert.Contains($"a {(float.IsNaN(bad) ? "NaN" : "infinite")} value at element {element} of", bf16.Message, StringComparison.Ordinal);
    }
}
