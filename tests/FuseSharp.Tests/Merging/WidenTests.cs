using FuseSharp.IO;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>WIDEN through files: stored BF16 inputs (decoded inside the kernels) against the same values stored as F32.</summary>
public sealed class WidenTests
{
    private static Dictionary<string, (float[] Values, long[] Shape)> Model(int seed, Dictionary<string, (float[] Values, long[] Shape)>? near)
    {
        // Rows of 37 and 40 columns: vector bodies and tails; a 2-D embedding (scored per token row) and a norm; 1100 columns
        // over 20 rows: several column blocks of the BF16 statistics sweep (the last with a tail); 1100 rows of 40: 64 row
        // groups of 17-18 rows, so each group flushes after 16 rows and again after its tail; rows of 16390 columns: longer
        // than a chunk, so the merge pass splits each row and writes it per segment instead of per block of rows.
        static float Bf(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));
        var r = new Random(seed);
        var shapes = new (string Name, long[] Shape)[]
        {
            ("model.embed_tokens.weight", [24, 40]),
            ("model.layers.0.self_attn.q_proj.weight", [40, 40]),
            ("model.layers.0.mlp.up_proj.weight", [19, 37]),
            ("model.layers.0.mlp.down_proj.weight", [20, 1100]),
            ("model.layers.0.mlp.gate_proj.weight", [1100, 40]),
            ("model.layers.0.self_attn.o_proj.weight", [3, 16390]),
            ("model.layers.0.input_layernorm.weight", [40]),
            ("lm_head.weight", [24, 40]),
        };
        return shapes.ToDictionary(s => s.Name, s =>
        {
            long n = s.Shape.Aggregate(1L, (a, b) => a * b);
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = Bf(near is null ? (float)(r.NextDouble() - 0.5) : near[s.Name].Values[i] + 0.01f * (float)(r.NextDouble() - 0.5));
            return (v, s.Shape);
        });
    }

    private static Dictionary<string, float[]> Merge(string root, string tag, DType dtype, Action<Dictionary<string, (float[] Values, long[] Shape)>>? edit = null)
    {
        var bm = Model(1, null);
        var fts = new[] { Model(2, bm), Model(3, bm), Model(4, bm) };
        edit?.Invoke(fts[1]);
        var b = TestModels.WriteModel(Path.Combine(root, $"{tag}-base"), bm, dtype);
        var models = fts.Select((m, k) => TestModels.WriteModel(Path.Combine(root, $"{tag}-ft{k}"), m, dtype)).ToList();
        var yaml = $"merge_method: widen\nbase_model: {b}\nmodels:\n" + string.Concat(models.Select(m => $"  - model: {m}\n")) + "out_dtype: float32\n";
        var output = Path.Combine(root, $"{tag}-out");
        using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml), new MergeOptions())) MergeExecutor.Run(plan, output);
        using var merged = SafetensorsModel.Open(output);
        return merged.Tensors.ToDictionary(t => t.Name, t =>
        {
            var v = new float[t.ElementCount];
            merged.ReadSingle(t.Name, v);
            return v;
        });
    }

    [Fact]
    public void Bf16Inputs_MergeBitwiseAsTheSameValuesInF32()
    {
        var root = TestModels.TempDir("widen-bf16");
        var bf16 = Merge(root, "bf16", DType.BF16);
        var f32 = Merge(root, "f32", DType.F32);
        Assert.Equal(f32.Keys.Order(), bf16.Keys.Order());
        foreach (var (name, v) in f32) Assert.Equal(v.Select(BitConverter.SingleToInt32Bits), bf16[name].Select(BitConverter.SingleToInt32Bits));
        Directory.Delete(root, true);
    }

    [Fact]
    public void NaNInABf16Input_IsNamedByElement()
    {
        var root = TestModels.TempDir("widen-nan");
        var e = Assert.Throws<MergeException>(() => Merge(root, "nan", DType.BF16, ft => ft["model.layers.0.mlp.up_proj.weight"].Values[300] = float.NaN));
        Assert.Equal("model.layers.0.mlp.up_proj.weight", e.Tensor);
        Assert.Contains("NaN", e.Message, StringComparison.Ordinal);
        Assert.Contains("element 300", e.Message, StringComparison.Ordinal);
        Directory.Delete(root, true);
    }
}
