using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// Plain task arithmetic over stored BF16 inputs, decoded in registers on the chunks that measure no diagnostics, against
/// the checked F32 read path: bitwise outputs (a tensor of more than 2·DiagnosticStride chunks, with a tail, so both the
/// sampled and the decoded chunks run), and the same error for a non-finite input in either kind of chunk.
/// </summary>
public sealed class Bf16TaskArithmeticTests
{
    private static float Bf(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));

    /// <summary>Chunks 0, 8, 16 are sampled (the general kernel); the others take the linear form.</summary>
    private const long Rows = (2 * GeneralizedTaskArithmetic.DiagnosticStride + 1) * Chunked.Size / 37 + 50;

    private static List<string> WriteModels(string root, DType dtype, Action<int, Dictionary<string, (float[] Values, long[] Shape)>>? edit, int count)
    {
        var r = new Random(11);
        var shapes = new (string Name, long[] Shape)[] { ("model.embed_tokens.weight", [Rows, 37]), ("model.layers.0.input_layernorm.weight", [13]) };
        var names = new List<string>();
        Dictionary<string, (float[] Values, long[] Shape)>? bm = null;
        for (int k = 0; k < count; k++)
        {
            Dictionary<string, (float[] Values, long[] Shape)> model = shapes.ToDictionary(s => s.Name, s =>
            {
                var v = new float[s.Shape.Aggregate(1L, (a, b) => a * b)];
                for (int i = 0; i < v.Length; i++)
                {
                    float x = (float)(r.NextDouble() * 2 - 1);
                    v[i] = Bf(bm is null ? x : i % 13 == 0 ? bm[s.Name].Values[i] : bm[s.Name].Values[i] + 0.05f * x);
                }
                return (v, s.Shape);
            });
            bm ??= model;
            edit?.Invoke(k, model);
            names.Add(TestModels.WriteModel(Path.Combine(root, $"m{k}"), model, dtype));
        }
        return names;
    }

    private static string Yaml(List<string> names, string globals) =>
        $"merge_method: task_arithmetic\nbase_model: {names[0]}\nmodels:\n" +
        string.Concat(names.Skip(1).Select((n, k) => $"  - model: {n}\n    parameters:\n      weight: {0.9 - 0.35 * k}\n")) +
        $"parameters:\n  {globals}\ndtype: float32\n";

    [Theory]
    [InlineData(4, "lambda: 0.8")]
    [InlineData(2, "normalize: true")]
    [InlineData(3, "lambda: 1.3\n  normalize: true")]
    public void StoredBf16_MergesBitwiseAsTheF32Inputs(int models, string globals)
    {
        if (!TaskVectorKernels.CanDecodeBFloat16) return;
        var root = TestModels.TempDir("bf16-ta");
        var outputs = new List<Dictionary<string, (float[] Values, long[] Shape)>>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        {
            foreach (var d in Directory.GetDirectories(root)) Directory.Delete(d, true);
            var names = WriteModels(root, dtype, null, models);
            outputs.Add(TestModels.Merge(Yaml(names, globals), Path.Combine(root, $"out-{dtype}")));
        }
        Assert.Equal(2, outputs[1].Count);
        foreach (var (name, (values, _)) in outputs[0])
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), outputs[1][name].Values.Select(BitConverter.SingleToInt32Bits));
        Directory.Delete(root, true);
    }

    [Theory]
    [InlineData(0, 300, float.NaN)] // a sampled chunk (the general kernel's checked reads)
    [InlineData(2, 16390, float.PositiveInfinity)] // decoded chunks: an input, the base, the tail
    [InlineData(0, 5 * Chunked.Size + 7, float.NegativeInfinity)]
    [InlineData(1, (int)Rows * 37 - 3, float.NaN)]
    public void NonFiniteBf16Input_FailsWithTheMessageOfTheCheckedPath(int model, int element, float bad) =>
        Bf16MagnitudeTests.AssertSameNonFiniteMessage(names => Yaml(names, "lambda: 0.8"), 3, model, element, bad, WriteModels);
}
