namespace FuseSharp.Models;

/// <summary>
/// Where an architecture's checkpoint keeps each weight: tensor-name templates in the checkpoint's own words.
/// Global names are complete (<c>model.embed_tokens.weight</c>); per-layer names are relative to
/// <see cref="Layer"/> (<c>model.layers.{i}.</c>) and get <c>.weight</c> / <c>.bias</c> appended; expert names are
/// relative to <see cref="Expert"/> (<c>block_sparse_moe.experts.{e}.</c>). Which of them are used follows from the
/// <see cref="TransformerSpec"/> (QKV layout, MLP kind, biases); unused ones keep their Llama defaults.
/// </summary>
public sealed record WeightNames
{
    public required string Embedding { get; init; }

    /// <summary>Learned position table (GPT-2), or null.</summary>
    public string? PositionEmbedding { get; init; }

    /// <summary>Final norm, without <c>.weight</c>.</summary>
    public required string FinalNorm { get; init; }

    /// <summary>Output projection (absent when tied).</summary>
    public string LmHead { get; init; } = "lm_head.weight";

    /// <summary>Prefix of layer <c>{i}</c>.</summary>
    public required string Layer { get; init; }

    public string AttentionNorm { get; init; } = "input_layernorm";

    public string MlpNorm { get; init; } = "post_attention_layernorm";

    public string Query { get; init; } = "self_attn.q_proj";

    public string Key { get; init; } = "self_attn.k_proj";

    public string Value { get; init; } = "self_attn.v_proj";

    /// <summary>The fused QKV tensor (layouts other than <see cref="QkvLayout.Separate"/>).</summary>
    public string Qkv { get; init; } = "self_attn.qkv_proj";

    public string Output { get; init; } = "self_attn.o_proj";

    public string Gate { get; init; } = "mlp.gate_proj";

    public string Up { get; init; } = "mlp.up_proj";

    /// <summary>Gate and up in one tensor (when <see cref="TransformerSpec.FusedGateUp"/>).</summary>
    public string GateUp { get; init; } = "mlp.gate_up_proj";

    public string Down { get; init; } = "mlp.down_proj";

    /// <summary>Mixture of experts: the router (relative to the layer).</summary>
    public string Router { get; init; } = "block_sparse_moe.gate";

    /// <summary>Mixture of experts: prefix of expert <c>{e}</c> (relative to the layer).</summary>
    public string Expert { get; init; } = "block_sparse_moe.experts.{e}.";

    public string ExpertGate { get; init; } = "w1";

    public string ExpertUp { get; init; } = "w3";

    public string ExpertDown { get; init; } = "w2";

    /// <summary>
    /// Prefix substitutions tried when a tensor is missing, e.g. GPT-2 checkpoints saved from <c>GPT2Model</c>
    /// name <c>h.0.attn...</c> where <c>GPT2LMHeadModel</c> has <c>transformer.h.0.attn...</c>.
    /// </summary>
    public IReadOnlyList<(string Prefix, string Replacement)> Aliases { get; init; } = [];

    /// <summary>The name of a per-layer tensor.</summary>
    public string InLayer(int layer, string relative) => Layer.Replace("{i}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + relative;

    /// <summary>The name of a per-expert tensor.</summary>
    public string InExpert(int layer, int expert, string relative) =>
        InLayer(layer, Expert.Replace("{e}", expert.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + relative);

    /// <summary>The alternative names of <paramref name="name"/> (aliases applied), the name itself first.</summary>
    public IEnumerable<string> Candidates(string name)
    {
        yield return name;
        foreach (var (prefix, replacement) in Aliases)
            if (name.StartsWith(prefix, StringComparison.Ordinal)) yield return replacement + name[prefix.Length..];
    }
}
