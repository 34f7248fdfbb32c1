namespace FuseSharp.Models.Architectures;

/// <summary>
/// Qwen2 / Qwen2.5: Llama with biases on the q/k/v projections (not on o_proj). With <c>use_sliding_window</c>,
/// layers from <c>max_window_layers</c> on use <c>sliding_window</c>, as transformers' <c>layer_types</c> default.
/// </summary>
internal static class Qwen2
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "qwen2",
        ClassNames = ["Qwen2ForCausalLM"],
        Description = "Qwen1.5, Qwen2, Qwen2.5 (Llama with q/k/v biases)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "qwen2", defaultMaxPositions: 32768);
            int? window = c.Bool("use_sliding_window", false) ? c.Int("sliding_window") : null;
            int from = c.Int("max_window_layers", spec.NumLayers);
            return spec with
            {
                QkvBias = true,
                OutputBias = false,
                SlidingWindows = window is > 0 ? Enumerable.Range(0, spec.NumLayers).Select(l => l >= from ? window.Value : 0).ToArray() : null,
            };
        },
    };
}
