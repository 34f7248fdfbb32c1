using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models.Architectures;

/// <summary>
/// GPT-2: learned positions, pre-LayerNorm blocks, biases everywhere, GELU (tanh) MLP of width <c>n_inner</c>
/// (null: 4·n_embd), tied head. Its <c>Conv1D</c> layers store weights as (in, out); the engine multiplies by them
/// as stored (<see cref="WeightLayout.InOut"/>) rather than transposing a copy. <c>c_attn</c> rows are [q | k | v].
/// Checkpoints saved from <c>GPT2Model</c> lack the <c>transformer.</c> prefix (the hub's gpt2); both load.
/// <c>scale_attn_weights</c> false drops the 1/sqrt(d) scale; <c>scale_attn_by_inverse_layer_idx</c> divides layer l's
/// scores by l + 1; <c>reorder_and_upcast_attn</c> only changes float16 numerics and is ignored.
/// </summary>
internal static class Gpt2
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "gpt2",
        ClassNames = ["GPT2LMHeadModel"],
        Description = "GPT-2 (learned positions, Conv1D weights, LayerNorm, GELU)",
        Names = new WeightNames
        {
            Embedding = "transformer.wte.weight",
            PositionEmbedding = "transformer.wpe.weight",
            Layer = "transformer.h.{i}.",
            FinalNorm = "transformer.ln_f",
            AttentionNorm = "ln_1",
            MlpNorm = "ln_2",
            Qkv = "attn.c_attn",
            Output = "attn.c_proj",
            Up = "mlp.c_fc",
            Down = "mlp.c_proj",
            Aliases = [("transformer.", "")],
        },
        Configure = c =>
        {
            int d = c.RequireInt("n_embd", "hidden_size");
            int heads = c.RequireInt("n_head", "num_attention_heads");
            return new TransformerSpec
            {
                ModelType = "gpt2",
                HiddenSize = d,
                NumLayers = c.RequireInt("n_layer", "num_hidden_layers"),
                NumHeads = heads,
                NumKvHeads = heads,
                HeadDim = Common.HeadDim(c, d, heads),
                IntermediateSize = c.Int("n_inner") ?? 4 * d,
                VocabSize = c.RequireInt("vocab_size"),
                MaxPositions = c.Int("n_positions", "max_position_embeddings") ?? 1024,
                Norm = NormKind.LayerNorm,
                NormBias = true,
                NormEps = (float)c.Double("layer_norm_epsilon", 1e-5),
                Position = PositionKind.Learned,
                QkvLayout = QkvLayout.Fused,
                QkvBias = true,
                OutputBias = true,
                AttentionScale = c.Bool("scale_attn_weights", true) ? null : 1f,
                ScaleAttentionByInverseLayer = c.Bool("scale_attn_by_inverse_layer_idx", false),
                Mlp = MlpKind.Plain,
                Activation = Common.Activation(c, c.String("activation_function") ?? "gelu_new", "activation_function"),
                MlpBias = true,
                LinearLayout = WeightLayout.InOut,
                TiedEmbeddings = true,
            }.WithSpecialTokens(c);
        },
    };
}
