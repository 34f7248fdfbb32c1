using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models.Architectures;

/// <summary>Config reading shared by the families (the Llama lineage reads the same keys with the same defaults).</summary>
internal static class Common
{
    /// <summary>
    /// The Llama-style config (hidden_size, num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps,
    /// rope_theta, rope_scaling, partial_rotary_factor, hidden_act, tie_word_embeddings, attention_bias, mlp_bias),
    /// with transformers' LlamaConfig defaults for optional keys. Families adjust the result with <c>with</c>.
    /// </summary>
    public static TransformerSpec LlamaLike(ConfigReader c, string modelType, int defaultMaxPositions, bool defaultTied = false, int? defaultHeadDim = null)
    {
        int d = c.RequireInt("hidden_size");
        int heads = c.RequireInt("num_attention_heads");
        int kv = c.Int("num_key_value_heads") ?? heads;
        int headDim = c.Int("head_dim") ?? defaultHeadDim ?? HeadDim(c, d, heads);
        int maxPos = c.Int("max_position_embeddings") ?? defaultMaxPositions;
        int rotary = (int)(headDim * c.Double("partial_rotary_factor", 1.0));
        bool attnBias = c.Bool("attention_bias", false);
        var spec = new TransformerSpec
        {
            ModelType = modelType,
            HiddenSize = d,
            NumLayers = c.RequireInt("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kv,
            HeadDim = headDim,
            IntermediateSize = c.RequireInt("intermediate_size"),
            VocabSize = c.RequireInt("vocab_size"),
            MaxPositions = maxPos,
            Norm = NormKind.RmsNorm,
            NormEps = (float)c.Double("rms_norm_eps", 1e-6),
            Position = PositionKind.Rope,
            Rope = new RopeSpec(c.Double("rope_theta", 10000), rotary, maxPos, c.RopeScaling()),
            QkvBias = attnBias,
            OutputBias = attnBias,
            Mlp = MlpKind.Gated,
            Activation = Activation(c, c.String("hidden_act") ?? "silu", "hidden_act"),
            MlpBias = c.Bool("mlp_bias", false),
            TiedEmbeddings = c.Bool("tie_word_embeddings", defaultTied),
        }.WithSpecialTokens(c);
        return spec with { EmbeddingPaddingIndex = spec.PadTokenId }; // nn.Embedding(vocab, hidden, padding_idx=pad_token_id)
    }

    /// <summary>Adds pad/bos/eos ids from the config.</summary>
    public static TransformerSpec WithSpecialTokens(this TransformerSpec spec, ConfigReader c) => spec with
    {
        PadTokenId = c.Int("pad_token_id"),
        BosTokenId = c.Int("bos_token_id"),
        EosTokenIds = c.IntList("eos_token_id"),
    };

    /// <summary>hidden / heads, which must divide exactly.</summary>
    public static int HeadDim(ConfigReader c, int hidden, int heads)
    {
        if (heads <= 0) throw c.Invalid("num_attention_heads", $"is {heads}; it must be positive");
        if (hidden % heads != 0) throw c.Invalid("hidden_size", $"({hidden}) is not a multiple of the number of heads ({heads})", "set head_dim explicitly if the model has one");
        return hidden / heads;
    }

    /// <summary>Maps a transformers activation name (ACT2FN keys) to a kernel.</summary>
    public static ActivationKind Activation(ConfigReader c, string name, string field) => name switch
    {
        "silu" or "swish" => ActivationKind.Silu,
        "gelu" => ActivationKind.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" or "gelu_python_tanh" => ActivationKind.GeluTanh,
        "relu" => ActivationKind.Relu,
        "quick_gelu" => ActivationKind.QuickGelu,
        _ => throw c.Invalid(field, $"is '{name}', which FuseSharp does not implement",
            "supported activations: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, quick_gelu"),
    };

    /// <summary>The same window for every layer (null or non-positive: none).</summary>
    public static IReadOnlyList<int>? EveryLayer(int layers, int? window) =>
        window is > 0 ? Enumerable.Repeat(window.Value, layers).ToArray() : null;
}
