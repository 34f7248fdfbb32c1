namespace FuseSharp.Models.Architectures;

/// <summary>
/// Llama 1/2/3, OpenLLaMA, SOLAR, TinyLlama, Vicuna and the other LlamaForCausalLM checkpoints: RMSNorm, RoPE
/// (rope_scaling linear / dynamic / llama3 / yarn), GQA, SwiGLU, optional q/k/v/o and MLP biases, tied or untied head.
/// </summary>
internal static class Llama
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "llama",
        ClassNames = ["LlamaForCausalLM"],
        Description = "Llama 1/2/3, OpenLLaMA, SOLAR, TinyLlama (RMSNorm, RoPE, GQA, SwiGLU)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c => Common.LlamaLike(c, "llama", defaultMaxPositions: 2048),
    };
}
