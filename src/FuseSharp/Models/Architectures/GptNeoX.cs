using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models.Architectures;

/// <summary>
/// GPT-NeoX (Pythia, RedPajama-INCITE, StableLM-alpha): <c>query_key_value</c> rows grouped per head
/// [q_h | k_h | v_h]; RoPE on the first <c>int(head_size · rotary_pct)</c> dims of each head (base
/// <c>rotary_emb_base</c>); parallel residual <c>x + attn(ln1(x)) + mlp(ln2(x))</c> when
/// <c>use_parallel_residual</c> (else sequential); exact GELU; biases everywhere; untied <c>embed_out</c>.
/// </summary>
internal static class GptNeoX
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "gpt_neox",
        ClassNames = ["GPTNeoXForCausalLM"],
        Description = "GPT-NeoX, Pythia (per-head fused QKV, partial rotary, parallel residual)",
        Names = new WeightNames
        {
            Embedding = "gpt_neox.embed_in.weight",
            Layer = "gpt_neox.layers.{i}.",
            FinalNorm = "gpt_neox.final_layer_norm",
            LmHead = "embed_out.weight",
            Qkv = "attention.query_key_value",
            Output = "attention.dense",
            Up = "mlp.dense_h_to_4h",
            Down = "mlp.dense_4h_to_h",
        },
        Configure = c =>
        {
            int d = c.RequireInt("hidden_size");
            int heads = c.RequireInt("num_attention_heads");
            int headDim = Common.HeadDim(c, d, heads);
            int maxPos = c.Int("max_position_embeddings") ?? 2048;
            int rotary = (int)(headDim * (c.Double("rotary_pct", "partial_rotary_factor") ?? 0.25)); // older and newer config names
            bool bias = c.Bool("attention_bias", true);
            return new TransformerSpec
            {
                ModelType = "gpt_neox",
                HiddenSize = d,
                NumLayers = c.RequireInt("num_hidden_layers"),
                NumHeads = heads,
                NumKvHeads = heads,
                HeadDim = headDim,
                IntermediateSize = c.RequireInt("intermediate_size"),
                VocabSize = c.RequireInt("vocab_size"),
                MaxPositions = maxPos,
                Norm = NormKind.LayerNorm,
                NormBias = true,
                NormEps = (float)c.Double("layer_norm_eps", 1e-5),
                Position = PositionKind.Rope,
                Rope = new RopeSpec(c.Double("rotary_emb_base", "rope_theta") ?? 10000, rotary, maxPos, c.RopeScaling()),
                QkvLayout = QkvLayout.PerHead,
                QkvBias = bias,
                OutputBias = bias,
                Mlp = MlpKind.Plain,
                Activation = Common.Activation(c, c.String("hidden_act") ?? "gelu", "hidden_act"),
                MlpBias = true,
                Residual = c.Bool("use_parallel_residual", true) ? ResidualKind.Parallel : ResidualKind.Sequential,
                TiedEmbeddings = c.Bool("tie_word_embeddings", false),
            }.WithSpecialTokens(c);
        },
    };
}
