namespace FuseSharp.Models.Architectures;

/// <summary>
/// Mistral: Llama with a sliding attention window (<c>sliding_window</c>; null means full attention). A window of W
/// shows each query W keys (itself and W − 1 before it) as transformers' current masks do; mistral-src's reference
/// (and older transformers) show W + 1, available as <see cref="SlidingWindowConvention.MistralReference"/>.
/// </summary>
internal static class Mistral
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "mistral",
        ClassNames = ["MistralForCausalLM"],
        Description = "Mistral 7B and derivatives (Llama with a sliding attention window)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "mistral", defaultMaxPositions: 4096 * 32);
            return spec with { SlidingWindows = Common.EveryLayer(spec.NumLayers, c.Int("sliding_window")) };
        },
    };
}
