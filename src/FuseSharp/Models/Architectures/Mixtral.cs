namespace FuseSharp.Models.Architectures;

/// <summary>
/// Mixtral: Mistral with a sparse mixture of experts in place of the MLP. Per token the router's softmax over
/// all <c>num_local_experts</c> logits is computed, the top <c>num_experts_per_tok</c> are kept and renormalised
/// (equivalently a softmax over the selected logits), and the output is the weighted sum of those experts'
/// SwiGLU MLPs (<c>w2(silu(w1 x) · w3 x)</c>). Router jitter is a training-time option and is not applied.
/// </summary>
internal static class Mixtral
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "mixtral",
        ClassNames = ["MixtralForCausalLM"],
        Description = "Mixtral 8x7B / 8x22B (sparse mixture of SwiGLU experts, top-k routing)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "mixtral", defaultMaxPositions: 4096 * 32);
            return spec with
            {
                Mlp = MlpKind.MixtureOfExperts,
                NumExperts = c.Int("num_local_experts", 8),
                ExpertsPerToken = c.Int("num_experts_per_tok", 2),
                SlidingWindows = Common.EveryLayer(spec.NumLayers, c.Int("sliding_window")),
            };
        },
    };
}
