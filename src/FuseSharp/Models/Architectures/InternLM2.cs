namespace FuseSharp.Models.Architectures;

/// <summary>
/// InternLM2 (remote code <c>modeling_internlm2.py</c>): Llama math under its own names (<c>tok_embeddings</c>,
/// <c>attention.wqkv</c>, <c>attention.wo</c>, <c>feed_forward.w1/w3/w2</c>, <c>attention_norm</c>, <c>ffn_norm</c>,
/// <c>output</c>). <c>wqkv</c> packs rows per KV head: for group j, [q_{jg} .. q_{jg+g−1} | k_j | v_j] with
/// g = heads / kv_heads; the engine reads the columns where they are, no rows are moved. <c>bias</c> covers wqkv and wo.
/// </summary>
internal static class InternLM2
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "internlm2",
        ClassNames = ["InternLM2ForCausalLM"],
        Description = "InternLM2 / InternLM2.5 (packed per-group wqkv)",
        Names = new WeightNames
        {
            Embedding = "model.tok_embeddings.weight",
            Layer = "model.layers.{i}.",
            FinalNorm = "model.norm",
            LmHead = "output.weight",
            AttentionNorm = "attention_norm",
            MlpNorm = "ffn_norm",
            Qkv = "attention.wqkv",
            Output = "attention.wo",
            Gate = "feed_forward.w1",
            Up = "feed_forward.w3",
            Down = "feed_forward.w2",
        },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "internlm2", defaultMaxPositions: 2048);
            bool bias = c.Bool("bias", true);
            return spec with { QkvLayout = QkvLayout.PerKvGroup, QkvBias = bias, OutputBias = bias };
        },
    };
}
