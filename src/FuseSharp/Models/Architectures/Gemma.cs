namespace FuseSharp.Models.Architectures;

/// <summary>
/// Gemma (1): embeddings multiplied by sqrt(hidden_size) (rounded to float, as transformers does; the tied head
/// uses the unscaled matrix), every RMSNorm applies (1 + w), GeGLU with the tanh GELU, <c>head_dim</c> independent
/// of hidden / heads, always tied. The activation is <c>hidden_activation</c>; when it is null transformers uses
/// gelu_pytorch_tanh (old configs name an exact "gelu" in <c>hidden_act</c> that the model was not trained with).
/// </summary>
internal static class Gemma
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "gemma",
        ClassNames = ["GemmaForCausalLM"],
        Description = "Gemma 2B/7B (scaled embeddings, (1 + w) RMSNorm, GeGLU)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "gemma", defaultMaxPositions: 8192, defaultTied: true, defaultHeadDim: 256); // GemmaConfig's defaults
            return spec with
            {
                NormWeightOffset = 1f,
                EmbeddingScale = (float)Math.Sqrt(spec.HiddenSize),
                Activation = Common.Activation(c, c.String("hidden_activation") ?? "gelu_pytorch_tanh", "hidden_activation"),
                TiedEmbeddings = true,
            };
        },
    };
}
