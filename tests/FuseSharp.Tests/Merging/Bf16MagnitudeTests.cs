using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// The sparsifiers' |Δ| producer over stored BF16 inputs (decoded in the kernel, NaN/Inf detected through the sum of
/// magnitudes) against the checked F32 read path: bitwise, over chunk tails, odd ranges and rows, and the same error for
/// a non-finite input.
/// </summary>
public sealed class Bf16MagnitudeTests
{
    private static float Bf(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));

    /// <summary>Rows of 37 columns: one whole chunk and a tail of 9516; a small odd matrix and a vector.</summary>
    internal static Dictionary<string, (float[] Values, long[] Shape)> Model(int seed, Dictionary<string, (float[] Values, long[] Shape)>? near)
    {
        var r = new Random(seed);
        var shapes = new (string Name, long[] Shape)[]
        {
            ("model.embed_tokens.weight", [700, 37]),
            ("model.layers.0.self_attn.q_proj.weight", [5, 3]),
            ("model.layers.0.input_layernorm.weight", [37]),
        };
        return shapes.ToDictionary(s => s.Name, s =>
        {
            var v = new float[s.Shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < v.Length; i++)
            {
                float x = (float)(r.NextDouble() * 2 - 1);
                // Some equal to the base (|Δ| = 0, signed zeros) and some large.
                v[i] = Bf(near is null ? x : i % 11 == 0 ? near[s.Name].Values[i] : i % 97 == 0 ? near[s.Name].Values[i] + 3e4f * x : near[s.Name].Values[i] + 0.05f * x);
            }
            return (v, s.Shape);
        });
    }

    /// <summary>A base and <paramref name="count"/> − 1 models near it (edited first), written as <paramref name="dtype"/> under <paramref name="root"/>.</summary>
    internal static List<string> WriteModels(string root, DType dtype, Action<int, Dictionary<string, (float[] Values, long[] Shape)>>? edit = null, int count = 4)
    {
        var bm = Model(1, null);
        var all = new[] { bm }.Concat(Enumerable.Range(2, count - 1).Select(seed => Model(seed, bm))).ToArray();
        for (int k = 0; k < all.Length; k++) edit?.Invoke(k, all[k]);
        return all.Select((m, k) => TestModels.WriteModel(Path.Combine(root, $"m{k}"), m, dtype)).ToList();
    }

    private static string Yaml(string method, List<string> names, string parameters) =>
        $"merge_method: {method}\nbase_model: {names[0]}\nmodels:\n" +
        string.Concat(names.Skip(1).Select(n => $"  - model: {n}\n    parameters:\n      weight: 0.5\n      {parameters}\n")) + "dtype: float32\n";

    [Fact]
    public void Producer_MatchesTheCheckedReadPath_Bitwise()
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        var root = TestModels.TempDir("bf16-mag");
        var names = WriteModels(root, DType.BF16);
        using var plan = MergePlanner.Plan(MergeConfigParser.Parse(Yaml("ties", names, "density: 0.5")), new MergeOptions());
        var sc = ChunkScratch.ForCurrentThread();
        foreach (var task in plan.Tasks)
        {
            int m = task.Inputs.Count;
            var fast = MethodHelpers.BFloat16Magnitudes(task);
            Assert.NotNull(fast);
            var slow = MethodHelpers.Deltas(task, magnitudes: true);
            long n = task.Count, cols = task.Shape[task.Shape.Rank - 1];
            var ranges = new List<(long Start, int Length)> { (0, 1), (3, (int)Math.Min(13, n - 3)), (n - 1, 1), (0, (int)Math.Min(n, 9)) };
            for (long s = 0; s < n; s += Chunked.Size) ranges.Add((s, (int)Math.Min(Chunked.Size, n - s))); // the grid, with its tail
            for (long r = 0; r < n / cols; r += 61) ranges.Add((r * cols, (int)cols)); // rows (DELLA)
            if (n > Chunked.Size + 40) ranges.Add((Chunked.Size - 20, 40)); // across a chunk boundary
            foreach (var (start, length) in ranges)
            {
                slow(start, length, sc);
                var expected = Enumerable.Range(0, m).Select(i => sc.Get(i, length).ToArray()).ToList();
                fast!(start, length, sc);
                for (int i = 0; i < m; i++)
                    Assert.Equal(expected[i].Select(BitConverter.SingleToInt32Bits), sc.Get(i, length).ToArray().Select(BitConverter.SingleToInt32Bits));
            }
            // The grid chunks the producer checked finite are marked screened for the merge pass.
            unsafe
            {
                Assert.True(((StoredTensorSource)task.Base!.Source).ScreenedBFloat16(0, (int)Math.Min(Chunked.Size, n)) is not null);
            }
        }
        Directory.Delete(root, true);
    }

    [Fact]
    public unsafe void Kernel_MatchesDecodeThenAbsoluteDifference_Bitwise_AndItsSumFlagsNonFiniteInputs()
    {
        foreach (int n in new[] { 0, 1, 7, 8, 9, 15, 16, 17, 4103, 16384 })
        {
            var b = MethodHarness.Random(n, 31).Select(BFloat16Conversion.FromSingle).ToArray();
            var x = MethodHarness.Random(n, 32).Select((v, j) => j % 5 == 0 ? b[j] : BFloat16Conversion.FromSingle(BFloat16Conversion.ToSingle(b[j]) + 0.05f * v)).ToArray();
            if (n > 3) x[3] = (ushort)(b[3] ^ 0x8000); // ±v: |Δ| = 2|v|; and -0 − +0 below
            if (n > 2) (x[2], b[2]) = ((ushort)0x8000, (ushort)0);
            var expected = new float[n];
            MethodHelpers.AbsoluteDifference(x.Select(BFloat16Conversion.ToSingle).ToArray(), b.Select(BFloat16Conversion.ToSingle).ToArray(), expected);
            var actual = new float[n];
            float sum;
            fixed (ushort* px = x, pb = b) sum = TaskVectorKernels.AbsoluteDifferenceBFloat16(px, pb, actual);
            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
            Assert.True(float.IsFinite(sum));
            Assert.Equal(expected.Sum(v => (double)v), sum, 1e-3 * Math.Max(1, sum));
            // A NaN or an infinity in either input, in a vector body or a tail, makes the sum non-finite.
            foreach (int at in new[] { 0, n / 2, n - 1 }.Where(j => j >= 0 && j < n).Distinct())
                foreach (ushort bad in new ushort[] { 0x7FC0, 0xFFC1, 0x7F80, 0xFF80 })
                    foreach (bool inBase in new[] { false, true })
                    {
                        var xs = (ushort[])x.Clone();
                        var bs = (ushort[])b.Clone();
                        (inBase ? bs : xs)[at] = bad;
                        fixed (ushort* px = xs, pb = bs) sum = TaskVectorKernels.AbsoluteDifferenceBFloat16(px, pb, actual);
                        Assert.False(float.IsFinite(sum), $"n {n}, element {at}, bits {bad:X4}, in the base: {inBase}");
                    }
        }
    }

    [Theory]
    [InlineData("ties", "density: 0.5", 1, 300, float.NaN)]
    [InlineData("della", "density: 0.5\n      epsilon: 0.1", 2, 16390, float.NaN)]
    [InlineData("dare_ties", "density: 0.6", 3, 25899, float.PositiveInfinity)]
    [InlineData("breadcrumbs", "density: 0.8\n      gamma: 0.05", 0, 17, float.NegativeInfinity)]
    [InlineData("della", "density: 0.5\n      epsilon: 0.1", 0, 40, float.PositiveInfinity)]
    public void NonFiniteBf16Input_FailsWithTheMessageOfTheCheckedPath(string method, string parameters, int model, int element, float bad) =>
        AssertSameNonFiniteMessage(names => Yaml(method, names, parameters), 4, model, element, bad);

    /// <summary>
    /// A merge (<paramref name="yaml"/> of the model folders, written by <paramref name="write"/>, default <see cref="WriteModels"/>)
    /// with a NaN/Inf at <paramref name="element"/> of model <paramref name="model"/>'s embedding fails with the same message for
    /// F32 inputs (checked reads) and BF16 inputs.
    /// </summary>
    internal static void AssertSameNonFiniteMessage(Func<List<string>, string> yaml, int models, int model, int element, float bad,
        Func<string, DType, Action<int, Dictionary<string, (float[] Values, long[] Shape)>>, int, List<string>>? write = null)
    {
        write ??= WriteModels;
        // The same folders hold the values first as F32 (checked reads), then as BF16 (decoded in the kernel).
        var root = TestModels.TempDir("bf16-nan");
        var messages = new List<string>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            foreach (var d in Directory.GetDirectories(root)) Directory.Delete(d, true);
            var names = write(root, dtype, (k, t) =>
            {
                if (k == model) t["model.embed_tokens.weight"].Values[element] = bad;
            }, models);
            var output = Path.Combine(root, "out");
            using var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml(names)), new MergeOptions { Seed = 3 });
            var e = Assert.Throws<MergeException>(() => MergeExecutor.Run(plan, output));
            Assert.Equal("model.embed_tokens.weight", e.Tensor);
            Assert.False(Directory.Exists(output));
            messages.Add(e.Message);
        }
        Assert.Equal(messages[0], messages[1]);
        Assert.Contains($"a {(float.IsNaN(bad) ? "NaN" : "infinite")} value at element {element} of", messages[1], StringComparison.Ordinal);
        Directory.Delete(root, true);
    }
}
