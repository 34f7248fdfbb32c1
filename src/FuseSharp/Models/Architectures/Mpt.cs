using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models.Architectures;

/// <summary>
/// MPT (MosaicML MPT-7B/30B, one of FuseLLM's sources): ALiBi instead of position embeddings, LayerNorm without
/// bias and no linear biases when <c>no_bias</c>, <c>Wqkv</c> rows [q | k | v] with its output clamped to
/// ±<c>attn_config.clip_qkv</c>, exact-GELU MLP of width <c>expansion_ratio · d_model</c>, head tied to <c>wte</c>.
/// ALiBi slopes: <c>2^(−k·alibi_bias_max/n)</c> for k = 1..n with n the head count rounded up to a power of two;
/// when n differs from the head count, the odd-indexed slopes come first, then the even ones (transformers'
/// <c>build_mpt_alibi_tensor</c>). Not supported (a clear error): qk_ln, MPT without ALiBi, logit_scale.
/// </summary>
internal static class Mpt
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "mpt",
        ClassNames = ["MptForCausalLM", "MPTForCausalLM"],
        Description = "MPT (ALiBi, bias-free LayerNorm, clip_qkv)",
        Names = new WeightNames
        {
            Embedding = "transformer.wte.weight",
            Layer = "transformer.blocks.{i}.",
            FinalNorm = "transformer.norm_f",
            AttentionNorm = "norm_1",
            MlpNorm = "norm_2",
            Qkv = "attn.Wqkv",
            Output = "attn.out_proj",
            Up = "ffn.up_proj",
            Down = "ffn.down_proj",
        },
        Configure = c =>
        {
            int d = c.RequireInt("d_model", "hidden_size");
            int heads = c.RequireInt("n_heads", "num_attention_heads");
            var attn = c.Section("attn_config");
            if (attn.Bool("qk_ln", false)) throw c.Invalid("attn_config.qk_ln", "is true; MPT with query/key LayerNorm is not supported");
            if (!attn.Bool("alibi", true)) throw c.Invalid("attn_config.alibi", "is false; only ALiBi MPT models are supported (as in transformers)");
            if (c.Has("logit_scale") && c.Raw["logit_scale"] is not null) throw c.Invalid("logit_scale", "is set; scaled MPT logits are not supported");
            var type = attn.String("attn_type") ?? "multihead_attention";
            if (type != "multihead_attention") throw c.Invalid("attn_config.attn_type", $"is '{type}'; only multihead_attention is supported");
            bool bias = !c.Bool("no_bias", true);
            double? clip = attn.Double("clip_qkv");
            double? scale = attn.Double("softmax_scale");
            return new TransformerSpec
            {
                ModelType = "mpt",
                HiddenSize = d,
                NumLayers = c.RequireInt("n_layers", "num_hidden_layers"),
                NumHeads = heads,
                NumKvHeads = heads,
                HeadDim = Common.HeadDim(c, d, heads),
                IntermediateSize = c.Int("expansion_ratio", 4) * d,
                VocabSize = c.RequireInt("vocab_size"),
                MaxPositions = c.Int("max_seq_len", "max_position_embeddings") ?? 2048,
                Norm = NormKind.LayerNorm,
                NormBias = bias,
                NormEps = (float)c.Double("layer_norm_epsilon", 1e-5),
                Position = PositionKind.Alibi,
                AlibiBiasMax = attn.Double("alibi_bias_max", 8),
                QkvLayout = QkvLayout.Fused,
                QkvBias = bias,
                OutputBias = bias,
                ClipQkv = clip is { } cv ? (float)cv : null,
                AttentionScale = scale is { } s ? (float)s : null,
                Mlp = MlpKind.Plain,
                Activation = ActivationKind.Gelu,
                MlpBias = bias,
                TiedEmbeddings = true,
            }.WithSpecialTokens(c);
        },
    };
}
