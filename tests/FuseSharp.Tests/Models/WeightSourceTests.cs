using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>The forward over weights that are not a mapped F32/BF16 checkpoint: a training-style arena, F16 files.</summary>
public class WeightSourceTests
{
    [Fact]
    public void ArenaOfViews_GivesTheSameLogits_AndSeesInPlaceUpdates()
    {
        using var mapped = TransformerModel.Load(ModelFixtures.Folder("qwen2-tiny"));
        using var st = SafetensorsModel.Open(ModelFixtures.Folder("qwen2-tiny"));
        // One arena, every parameter a named view at its offset (what a training engine holds).
        long total = st.Tensors.Sum(t => t.ElementCount) * 4;
        using var arena = new NativeStorage(total);
        var views = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var t in st.Tensors)
        {
            var view = new Tensor(DType.F32, t.Shape, arena, offset, ownsStorage: false);
            st.ReadSingle(t.Name, view.AsSpan<float>());
            views[t.Name] = view;
            offset += t.ElementCount * 4;
        }
        using var model = TransformerModel.Create(mapped.Architecture, mapped.Spec, new TensorWeightSource(views));
        var batch = TokenBatch.Single([3, 17, 42, 99, 5]);
        FullLogits Run(TransformerModel m)
        {
            var f = new FullLogits();
            m.Forward(batch, f);
            return f;
        }
        var before = Run(model);
        KernelAssert.Close(Run(mapped).Values, before.Values, 0, 0, "arena vs mapped");

        // An optimizer step writes the arena in place; the next forward must see it (no stale copies of weights or biases).
        views["lm_head.weight"].AsSpan<float>().Fill(0f);
        Assert.All(Run(model).Values, v => Assert.Equal(0f, v));
        views["model.layers.0.self_attn.q_proj.bias"].AsSpan<float>()[0] += 1f;
        views["lm_head.weight"].AsSpan<float>().Fill(0.01f);
        var after = Run(model);
        Assert.NotEqual(before.Values, after.Values);
    }

    [Fact]
    public void Float16Checkpoint_IsConvertedOnce_AndMatchesItsF32Twin()
    {
        using var tmp = new TempDir();
        string f16 = Path.Combine(tmp.Path, "f16"), f32 = Path.Combine(tmp.Path, "f32");
        using (var src = SafetensorsModel.Open(ModelFixtures.Folder("llama-tied-tiny")))
        {
            foreach (var (dir, dtype) in new[] { (f16, DType.F16), (f32, DType.F32) })
            {
                Directory.CreateDirectory(dir);
                File.Copy(Path.Combine(ModelFixtures.Folder("llama-tied-tiny"), "config.json"), Path.Combine(dir, "config.json"));
                using var w = SafetensorsWriter.Create(Path.Combine(dir, "model.safetensors"), src.Tensors.Select(t => new TensorSpec(t.Name, dtype, t.Shape)));
                foreach (var t in src.Tensors)
                {
                    var values = src.ReadSingle(t.Name);
                    for (int i = 0; i < values.Length; i++) values[i] = (float)(Half)values[i]; // the F32 twin holds the F16-rounded values
                    w.WriteSingle(t.Name, values);
                }
                w.Commit();
            }
        }
        using var a = TransformerModel.Load(f16);
        using var b = TransformerModel.Load(f32);
        var la = new FullLogits();
        var lb = new FullLogits();
        a.Forward(TokenBatch.Single([1, 2, 3, 4]), la);
        b.Forward(TokenBatch.Single([1, 2, 3, 4]), lb);
        KernelAssert.Close(lb.Values, la.Values, 0, 0, "f16 vs f32 twin");
    }

    [Fact]
    public void Gpt2Checkpoint_WithoutTheTransformerPrefix_Loads()
    {
        // The hub's gpt2 was saved from GPT2Model: "h.0.attn.c_attn.weight", "wte.weight", ... and extra buffers.
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "gpt2");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(ModelFixtures.Folder("gpt2-tiny"), "config.json"), Path.Combine(dir, "config.json"));
        using (var src = SafetensorsModel.Open(ModelFixtures.Folder("gpt2-tiny")))
        {
            var specs = src.Tensors.Select(t => new TensorSpec(t.Name["transformer.".Length..], t.DType, t.Shape))
                .Append(new TensorSpec("h.0.attn.bias", DType.F32, new Shape(1, 1, 4, 4))).ToList();
            using var w = SafetensorsWriter.Create(Path.Combine(dir, "model.safetensors"), specs);
            foreach (var t in src.Tensors) w.Write(t.Name["transformer.".Length..], src.GetBytes(t.Name));
            w.WriteSingle("h.0.attn.bias", new float[16]);
            w.Commit();
        }
        using var renamed = TransformerModel.Load(dir);
        using var original = TransformerModel.Load(ModelFixtures.Folder("gpt2-tiny"));
        var a = new FullLogits();
        var b = new FullLogits();
        renamed.Forward(TokenBatch.Single([5, 6, 7]), a);
        original.Forward(TokenBatch.Single([5, 6, 7]), b);
        Assert.Equal(b.Values, a.Values);
    }

    [Fact]
    public void Bf16Weights_StayMapped()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-bf16-tiny"));
        Assert.All(model.Weights.Layers, l => Assert.All(l.Qkv.Parts, p => Assert.Equal(DType.BF16, p.Weight.DType)));
        Assert.Equal(DType.BF16, model.Weights.LmHead.Parts[0].Weight.DType);
    }
}
