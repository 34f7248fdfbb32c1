using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// The Gram reduction and the weighted write decoded from stored BF16 bits in registers (SLERP, and the write of every
/// Gram method) against the checked F32 read path: bitwise sums and outputs over chunk tails and odd lengths, the same
/// results when a square overflows F32 (the fallback), and the same error for a non-finite input.
/// </summary>
public sealed class Bf16GramTests
{
    private static float Bf(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));

    [Fact]
    public unsafe void AccumulateBFloat16_MatchesDecodeThenAccumulate_Bitwise()
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        foreach (int n in new[] { 0, 1, 7, 8, 9, 15, 511, 512, 513, 4103, 16383, 16384 })
            for (int m = 1; m <= 4; m++)
            {
                var bits = Enumerable.Range(0, m).Select(i => MethodHarness.Random(n, 40 + i, 3f).Select(BFloat16Conversion.FromSingle).ToArray()).ToArray();
                if (n > 2) bits[0][2] = 0x8000; // -0
                var f32 = bits.Select(b => b.Select(BFloat16Conversion.ToSingle).ToArray()).ToArray();
                int pairs = m * (m + 1) / 2;
                var expected = new double[pairs];
                Gram.Accumulate(f32, m, n, expected);
                var actual = new double[pairs];
                var handles = bits.Select(b => System.Runtime.InteropServices.GCHandle.Alloc(b, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
                try
                {
                    var ptrs = handles.Select(h => h.AddrOfPinnedObject()).ToArray();
                    Gram.AccumulateBFloat16(ptrs, n, actual);
                }
                finally
                {
                    foreach (var h in handles) h.Free();
                }
                Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), actual.Select(BitConverter.DoubleToInt64Bits));
            }
    }

    private static string Yaml(string method, List<string> names, string globals) => method == "linear"
        ? "merge_method: linear\nmodels:\n" + string.Concat(names.Select((n, k) => $"  - model: {n}\n    parameters:\n      weight: {0.7 - 0.3 * k}\n")) +
          (globals.Length > 0 ? $"parameters:\n  {globals}\n" : "") + "dtype: float32\n"
        : $"merge_method: {method}\nbase_model: {names[0]}\nmodels:\n" + string.Concat(names.Skip(1).Select(n => $"  - model: {n}\n")) +
          (globals.Length > 0 ? $"parameters:\n  {globals}\n" : "") + "dtype: float32\n";

    [Theory]
    [InlineData("slerp", 2, "t: 0.3", false)]
    [InlineData("slerp", 2, "t: 0.7", true)]
    [InlineData("model_stock", 3, "", false)]
    [InlineData("linear", 3, "normalize: false", false)]
    [InlineData("linear", 1, "", false)]
    [InlineData("linear", 4, "", true)]
    public void StoredBf16_MergesBitwiseAsTheF32Inputs(string method, int models, string globals, bool overflow)
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        var root = TestModels.TempDir("bf16-gram");
        var outputs = new List<Dictionary<string, (float[] Values, long[] Shape)>>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            // A square of 3e19 overflows F32: the register pass sees a non-finite norm and re-reads the chunk checked.
            foreach (var d in Directory.GetDirectories(root)) Directory.Delete(d, true);
            var names = Bf16MagnitudeTests.WriteModels(root, dtype, (k, t) =>
            {
                if (overflow && k == 1) t["model.embed_tokens.weight"].Values[16390] = Bf(3e19f);
            }, models);
            var output = Path.Combine(root, $"out-{dtype}");
            outputs.Add(TestModels.Merge(Yaml(method, names, globals), output));
        }
        Assert.Equal(3, outputs[1].Count);
        foreach (var (name, (values, _)) in outputs[0])
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), outputs[1][name].Values.Select(BitConverter.SingleToInt32Bits));
        if (overflow) Assert.Contains(outputs[1]["model.embed_tokens.weight"].Values, v => !float.IsFinite(v) || Math.Abs(v) > 1e18f);
        Directory.Delete(root, true);
    }

    [Theory]
    [InlineData(0, 300, float.NaN)]
    [InlineData(1, 16390, float.PositiveInfinity)]
    [InlineData(1, 25899, float.NegativeInfinity)]
    [InlineData(0, 36, float.NaN)]
    public void NonFiniteBf16Input_FailsSlerpWithTheMessageOfTheCheckedPath(int model, int element, float bad) => NonFinite("slerp", "t: 0.5", model, element, bad);

    [Theory]
    [InlineData(0, 300, float.NaN)]
    [InlineData(2, 16390, float.PositiveInfinity)]
    [InlineData(1, 25899, float.NegativeInfinity)]
    public void NonFiniteBf16Input_FailsLinearWithTheMessageOfTheCheckedPath(int model, int element, float bad) => NonFinite("linear", "", model, element, bad);

    [Fact]
    public unsafe void CombineBFloat16_ScreenIsZeroForFiniteValuesAndNaNOtherwise()
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        foreach (int n in new[] { 1, 7, 8, 13, 4103 })
            foreach (int at in new[] { 0, n / 2, n - 1 }.Distinct())
                foreach (ushort bad in new ushort[] { 0, 0x7FC0, 0x7F80, 0xFF80 })
                    foreach (bool inBase in new[] { false, true })
                    {
                        var b = MethodHarness.Random(n, 5, 1e30f).Select(BFloat16Conversion.FromSingle).ToArray();
                        var x = MethodHarness.Random(n, 6, 1e30f).Select(BFloat16Conversion.FromSingle).ToArray();
                        if (bad != 0) (inBase ? b : x)[at] = bad;
                        var expected = b.Select(BFloat16Conversion.ToSingle).ToArray();
                        System.Numerics.Tensors.TensorPrimitives.Multiply(expected, 0.3f, expected);
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x.Select(BFloat16Conversion.ToSingle).ToArray(), -1.7f, expected, expected);
                        var actual = new float[n];
                        float screen;
                        fixed (ushort* pb = b, px = x)
                            screen = MethodHelpers.CombineBFloat16(pb, 0.3f, new[] { (nint)px }, new[] { -1.7f }, actual);
                        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
                        if (bad == 0) Assert.Equal(0f, screen);
                        else Assert.True(float.IsNaN(screen), $"n {n}, at {at}, bits {bad:X4}");
                    }
    }

    private static void NonFinite(string method, string globals, int model, int element, float bad) =>
        Bf16MagnitudeTests.AssertSameNonFiniteMessage(names => Yaml(method, names, globals), Math.Max(2, model + 1), model, element, bad);
}
