namespace FuseSharp.Models.Architectures;

/// <summary>
/// Phi-3 / Phi-3.5: Llama with a fused <c>qkv_proj</c> (rows [q | k | v]) and a fused <c>gate_up_proj</c> (rows
/// [gate | up], MLP = <c>down(up · silu(gate))</c>), partial rotary, LongRoPE scaling for the 128k models, and a
/// sliding window when the config sets one.
/// </summary>
internal static class Phi3
{
    public static readonly Architecture Definition = new()
    {
        ModelType = "phi3",
        ClassNames = ["Phi3ForCausalLM"],
        Description = "Phi-3 / Phi-3.5 mini and medium (fused qkv_proj and gate_up_proj, LongRoPE)",
        Names = new WeightNames { Embedding = "model.embed_tokens.weight", Layer = "model.layers.{i}.", FinalNorm = "model.norm" },
        Configure = c =>
        {
            var spec = Common.LlamaLike(c, "phi3", defaultMaxPositions: 4096);
            return spec with
            {
                QkvLayout = QkvLayout.Fused,
                FusedGateUp = true,
                SlidingWindows = Common.EveryLayer(spec.NumLayers, c.Int("sliding_window")),
            };
        },
    };
}
