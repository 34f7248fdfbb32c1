using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models;

/// <summary>
/// Everything the engine needs to know about a decoder-only transformer, resolved from config.json by its
/// architecture: dimensions and the choice of shared block pieces. Two models with equal specs run the same code.
/// </summary>
public sealed record TransformerSpec
{
    /// <summary>config.json <c>model_type</c> (registry key).</summary>
    public required string ModelType { get; init; }

    public required int HiddenSize { get; init; }

    public required int NumLayers { get; init; }

    public required int NumHeads { get; init; }

    public required int NumKvHeads { get; init; }

    /// <summary>Per-head dimension (config <c>head_dim</c> when present, else hidden / heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary>MLP width (per expert for mixtures).</summary>
    public required int IntermediateSize { get; init; }

    public required int VocabSize { get; init; }

    /// <summary>config <c>max_position_embeddings</c> (or its family's name for it).</summary>
    public required int MaxPositions { get; init; }

    public NormKind Norm { get; init; } = NormKind.RmsNorm;

    public float NormEps { get; init; } = 1e-6f;

    /// <summary>LayerNorm has a bias (RMSNorm never does).</summary>
    public bool NormBias { get; init; }

    /// <summary>Added to every norm weight (Gemma stores w − 1 and applies 1 + w).</summary>
    public float NormWeightOffset { get; init; }

    public PositionKind Position { get; init; } = PositionKind.Rope;

    /// <summary>RoPE parameters when <see cref="Position"/> is <see cref="PositionKind.Rope"/>.</summary>
    public RopeSpec? Rope { get; init; }

    /// <summary>ALiBi: the bias of head h is slope_h · (j − i), slopes from this maximum (MPT <c>alibi_bias_max</c>).</summary>
    public double AlibiBiasMax { get; init; } = 8;

    public QkvLayout QkvLayout { get; init; } = QkvLayout.Separate;

    /// <summary>The q/k/v projections have biases.</summary>
    public bool QkvBias { get; init; }

    /// <summary>The attention output projection has a bias.</summary>
    public bool OutputBias { get; init; }

    /// <summary>MPT <c>clip_qkv</c>: the fused QKV output is clamped to [−c, c].</summary>
    public float? ClipQkv { get; init; }

    /// <summary>Scale of q·k; null for 1/sqrt(head_dim).</summary>
    public float? AttentionScale { get; init; }

    /// <summary>GPT-2 <c>scale_attn_by_inverse_layer_idx</c>: scores of layer l also divided by l + 1.</summary>
    public bool ScaleAttentionByInverseLayer { get; init; }

    /// <summary>Sliding-window size per layer (null or 0: full attention). Mistral: every layer; Qwen2: layers from max_window_layers.</summary>
    public IReadOnlyList<int>? SlidingWindows { get; init; }

    public MlpKind Mlp { get; init; } = MlpKind.Gated;

    public ActivationKind Activation { get; init; } = ActivationKind.Silu;

    /// <summary>MLP projections have biases.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Gate and up share one tensor with rows [gate | up] (Phi-3 <c>gate_up_proj</c>).</summary>
    public bool FusedGateUp { get; init; }

    public int NumExperts { get; init; }

    public int ExpertsPerToken { get; init; }

    public ResidualKind Residual { get; init; } = ResidualKind.Sequential;

    public WeightLayout LinearLayout { get; init; } = WeightLayout.OutIn;

    /// <summary>Embeddings are multiplied by this (Gemma: sqrt(hidden_size), rounded to float as transformers does).</summary>
    public float EmbeddingScale { get; init; } = 1f;

    /// <summary>The output projection is the embedding matrix.</summary>
    public bool TiedEmbeddings { get; init; }

    public int? PadTokenId { get; init; }

    /// <summary>
    /// The embedding row built with <c>nn.Embedding(padding_idx=…)</c> (Llama-family classes pass pad_token_id;
    /// GPT-2, GPT-NeoX and MPT do not): it is zero-initialised and its lookups get no gradient.
    /// </summary>
    public int? EmbeddingPaddingIndex { get; init; }

    public int? BosTokenId { get; init; }

    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Width of the fused QKV projection output: (H + 2·KV)·D.</summary>
    public int QkvWidth => (NumHeads + 2 * NumKvHeads) * HeadDim;

    /// <summary>The window of layer <paramref name="layer"/> (0 = full attention).</summary>
    public int SlidingWindow(int layer) => SlidingWindows is { } w && layer < w.Count ? w[layer] : 0;

    /// <summary>The q·k scale of a layer.</summary>
    public float ScaleOf(int layer) =>
        (AttentionScale ?? 1f / MathF.Sqrt(HeadDim)) / (ScaleAttentionByInverseLayer ? layer + 1 : 1);

    /// <summary>Column offsets in the fused QKV output of query head h, and of key / value head j.</summary>
    public (int Q, int K, int V) QkvColumns(int head, int kvHead)
    {
        int d = HeadDim, h = NumHeads, kv = NumKvHeads;
        switch (QkvLayout)
        {
            case QkvLayout.PerHead:
                return (3 * head * d, 3 * kvHead * d + d, 3 * kvHead * d + 2 * d);
            case QkvLayout.PerKvGroup:
                int g = h / kv, block = (g + 2) * d;
                return (head / g * block + head % g * d, kvHead * block + g * d, kvHead * block + (g + 1) * d);
            default:
                return (head * d, (h + kvHead) * d, (h + kv + kvHead) * d);
        }
    }

    /// <summary>Checks the invariants every architecture relies on.</summary>
    /// <exception cref="ArgumentException">A dimension is not positive or heads do not divide.</exception>
    public void Validate()
    {
        void Positive(int v, string name)
        {
            if (v <= 0) throw new ArgumentException($"{name} must be positive (got {v})");
        }
        Positive(HiddenSize, "hidden size");
        Positive(NumLayers, "number of layers");
        Positive(NumHeads, "number of attention heads");
        Positive(NumKvHeads, "number of key/value heads");
        Positive(HeadDim, "head dimension");
        Positive(IntermediateSize, "intermediate size");
        Positive(VocabSize, "vocabulary size");
        Positive(MaxPositions, "maximum positions");
        if (NumHeads % NumKvHeads != 0) throw new ArgumentException($"{NumHeads} attention heads are not a multiple of {NumKvHeads} key/value heads");
        if (QkvLayout == QkvLayout.PerHead && NumKvHeads != NumHeads) throw new ArgumentException("a per-head fused QKV needs as many key/value heads as heads");
        if (Position == PositionKind.Rope && Rope is null) throw new ArgumentException("rotary positions need RoPE parameters");
        if (Rope is { } r && (r.RotaryDim <= 0 || r.RotaryDim > HeadDim || r.RotaryDim % 2 != 0))
            throw new ArgumentException($"rotary dimension {r.RotaryDim} must be even and within the head dimension {HeadDim}");
        if (Mlp == MlpKind.MixtureOfExperts && (NumExperts <= 0 || ExpertsPerToken <= 0 || ExpertsPerToken > NumExperts))
            throw new ArgumentException($"a mixture of experts needs 0 < experts per token ({ExpertsPerToken}) <= experts ({NumExperts})");
    }
}
