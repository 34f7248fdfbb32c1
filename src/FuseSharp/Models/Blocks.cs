namespace FuseSharp.Models;

// The shared pieces a transformer block is described with. An architecture picks one value of each; the engine
// has exactly one implementation per value (llama.cpp's build_ffn(..., LLM_FFN_GELU, LLM_FFN_SEQ) idea).

/// <summary>Normalisation before attention and MLP.</summary>
public enum NormKind
{
    /// <summary>RMSNorm (Llama family, Gemma with a weight offset of 1).</summary>
    RmsNorm,

    /// <summary>LayerNorm with weight and optional bias (GPT-2, GPT-NeoX, MPT).</summary>
    LayerNorm,
}

/// <summary>How positions enter the model.</summary>
public enum PositionKind
{
    /// <summary>Rotary embedding of queries and keys.</summary>
    Rope,

    /// <summary>A learned table added to the token embeddings (GPT-2).</summary>
    Learned,

    /// <summary>ALiBi biases added to the attention scores (MPT).</summary>
    Alibi,
}

/// <summary>How the query, key and value projections are stored; each maps to one column layout of the fused QKV output.</summary>
public enum QkvLayout
{
    /// <summary>Three tensors q, k, v (Llama): output columns [q | k | v].</summary>
    Separate,

    /// <summary>One tensor whose rows are [q | k | v] (Phi-3 <c>qkv_proj</c>, GPT-2 <c>c_attn</c>, MPT <c>Wqkv</c>).</summary>
    Fused,

    /// <summary>One tensor, rows per head [q_h | k_h | v_h] (GPT-NeoX <c>query_key_value</c>; needs KV heads = heads).</summary>
    PerHead,

    /// <summary>One tensor, rows per KV group [q_{jg} .. q_{jg+g−1} | k_j | v_j] (InternLM2 <c>wqkv</c>).</summary>
    PerKvGroup,
}

/// <summary>The feed-forward network.</summary>
public enum MlpKind
{
    /// <summary><c>down(act(gate(x)) · up(x))</c>: SwiGLU / GeGLU.</summary>
    Gated,

    /// <summary><c>down(act(up(x)))</c>: the original transformer MLP.</summary>
    Plain,

    /// <summary>A router picks the top-k of E gated experts per token; outputs weighted by the renormalised router softmax (Mixtral).</summary>
    MixtureOfExperts,
}

/// <summary>How attention and MLP combine with the residual stream.</summary>
public enum ResidualKind
{
    /// <summary><c>x = x + attn(norm1(x)); x = x + mlp(norm2(x))</c>.</summary>
    Sequential,

    /// <summary><c>x = x + attn(norm1(x)) + mlp(norm2(x))</c> (GPT-NeoX <c>use_parallel_residual</c>).</summary>
    Parallel,
}

/// <summary>How a linear layer's weight matrix is stored.</summary>
public enum WeightLayout
{
    /// <summary><c>(out, in)</c>, <c>y = x · Wᵀ</c> (<c>nn.Linear</c>).</summary>
    OutIn,

    /// <summary><c>(in, out)</c>, <c>y = x · W</c> (GPT-2's <c>Conv1D</c>). Read as stored, never transposed in memory.</summary>
    InOut,
}
