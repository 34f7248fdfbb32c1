using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>config.json → spec mappings of the families, and shared pieces derived from them.</summary>
public class ArchitectureConfigTests
{
    private static TransformerSpec Spec(string arch, string json) =>
        ArchitectureRegistry.Get(arch).Resolve(new ModelConfig((JsonObject)JsonNode.Parse(json)!, "config.json"));

    [Fact]
    public void Qwen2_SlidingWindow_AppliesFromMaxWindowLayers()
    {
        var s = Spec("qwen2", """{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "vocab_size": 10, "use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1}""");
        Assert.Equal([0, 8, 8], Enumerable.Range(0, 3).Select(s.SlidingWindow));
        Assert.True(s.QkvBias);
        Assert.False(s.OutputBias);
        var off = Spec("qwen2", """{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "vocab_size": 10, "sliding_window": 8}""");
        Assert.Equal(0, off.SlidingWindow(2));
    }

    [Fact]
    public void Llama3_RopeScalingAndDefaults()
    {
        var s = Spec("llama", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 10, "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "eos_token_id": [5, 6]}""");
        Assert.Equal(RopeScalingKind.Llama3, s.Rope!.Scaling!.Kind);
        Assert.Equal(8192, s.Rope.Scaling.OriginalMaxPositions);
        Assert.Equal(16, s.HeadDim);
        Assert.Equal(2048, s.MaxPositions); // LlamaConfig default
        Assert.Equal([5, 6], s.EosTokenIds);
        Assert.False(s.TiedEmbeddings);
        var e = Assert.Throws<ModelConfigException>(() => Spec("llama", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "rope_scaling": {"type": "weird", "factor": 2}}"""));
        Assert.Contains("rope_scaling.rope_type", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GptNeoX_PartialRotaryAndParallelResidual()
    {
        var s = Spec("gpt_neox", """{"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10}""");
        Assert.Equal(4, s.Rope!.RotaryDim); // rotary_pct default 0.25 of head dim 16
        Assert.Equal(ResidualKind.Parallel, s.Residual);
        Assert.Equal(ActivationKind.Gelu, s.Activation);
        Assert.Equal((3 * 2 * 16, 3 * 2 * 16 + 16, 3 * 2 * 16 + 32), s.QkvColumns(2, 2));
    }

    [Fact]
    public void InternLM2_ColumnsAreGroupedPerKvHead()
    {
        var s = Spec("internlm2", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10}""");
        // head_dim 16, group 2: block of kv head j = [q_2j, q_2j+1, k_j, v_j], 64 columns each
        Assert.Equal((64 + 16, 64 + 32, 64 + 48), s.QkvColumns(3, 1));
        Assert.Equal(0, s.QkvColumns(0, 0).Q);
    }

    [Fact]
    public void Mpt_UnsupportedOptionsAreErrors()
    {
        const string baseCfg = """{"d_model": 32, "n_heads": 4, "n_layers": 1, "vocab_size": 10, "attn_config": {ATTN}}""";
        Assert.Equal(PositionKind.Alibi, Spec("mpt", baseCfg.Replace("{ATTN}", "{}", StringComparison.Ordinal)).Position);
        Assert.Throws<ModelConfigException>(() => Spec("mpt", baseCfg.Replace("{ATTN}", """{"qk_ln": true}""", StringComparison.Ordinal)));
        Assert.Throws<ModelConfigException>(() => Spec("mpt", baseCfg.Replace("{ATTN}", """{"alibi": false}""", StringComparison.Ordinal)));
    }

    [Fact]
    public void AlibiSlopes_ReorderWhenHeadsAreNotAPowerOfTwo()
    {
        Assert.Equal(new[] { 0.25f, 0.0625f, 1 / 64f, 1 / 256f }, TransformerModel.AlibiSlopes(4, 8));
        // 6 heads: n = 8, slopes 2^-1 .. 2^-8; odd-indexed first, then even-indexed, first six.
        Assert.Equal(new[] { 1 / 4f, 1 / 16f, 1 / 64f, 1 / 256f, 1 / 2f, 1 / 8f }, TransformerModel.AlibiSlopes(6, 8));
    }

    [Fact]
    public void Gemma_DefaultsAndScale()
    {
        var s = Spec("gemma", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "hidden_act": "gelu"}""");
        Assert.Equal(256, s.HeadDim);
        Assert.Equal(ActivationKind.GeluTanh, s.Activation); // hidden_activation null: gelu_pytorch_tanh, not hidden_act
        Assert.Equal(8f, s.EmbeddingScale);
        Assert.True(s.TiedEmbeddings);
        Assert.Equal(1f, s.NormWeightOffset);
    }

    [Fact]
    public void InvalidDimensions_AreConfigErrors()
    {
        var e = Assert.Throws<ModelConfigException>(() => Spec("llama", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 6, "vocab_size": 10}"""));
        Assert.Contains("hidden_size", e.Message, StringComparison.Ordinal);
        Assert.Throws<ModelConfigException>(() => Spec("llama", """{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10}"""));
        Assert.Throws<ModelConfigException>(() => Spec("llama", """{"hidden_size": "big", "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10}"""));
    }
}
