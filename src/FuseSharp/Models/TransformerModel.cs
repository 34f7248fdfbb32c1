using FuseSharp.IO;
using FuseSharp.Models.Weights;

namespace FuseSharp.Models;

/// <summary>Receives named intermediates of a forward (llama.cpp's <c>cb(cur, "attn_norm", il)</c>), for debugging and diagnostics.</summary>
public interface ITensorObserver
{
    /// <summary>
    /// <paramref name="values"/> holds rows <c>rowOffset ..</c> of the intermediate <paramref name="name"/> of
    /// <paramref name="layer"/> (−1 outside layers), <paramref name="columns"/> values per row. Valid only during the call.
    /// </summary>
    void Observe(string name, int layer, int rowOffset, ReadOnlySpan<float> values, int columns);
}

/// <summary>How many keys a sliding window of size W shows a query; the references disagree by one.</summary>
public enum SlidingWindowConvention
{
    /// <summary>W keys: the query and the W − 1 before it (transformers' masking_utils, <c>kv_idx &gt; q_idx − W</c>). The default.</summary>
    Transformers,

    /// <summary>W + 1 keys: the query and the W before it (mistral-src's reference mask <c>triu(diagonal = −W)</c>, and transformers before its mask rewrite).</summary>
    MistralReference,
}

/// <summary>Options of a loaded model.</summary>
public sealed record ModelOptions
{
    /// <summary>Which sliding-window boundary to use (Mistral, Qwen2 and Phi-3 windows); see <see cref="SlidingWindowConvention"/>.</summary>
    public SlidingWindowConvention SlidingWindowConvention { get; init; } = SlidingWindowConvention.Transformers;

    /// <summary>
    /// Allow positions at or past <c>max_position_embeddings</c> for RoPE and ALiBi models (transformers computes
    /// them, with degraded quality). Learned position tables can never go past their end.
    /// </summary>
    public bool AllowLongerThanTrained { get; init; }

    /// <summary>Rows of the token-wise stages (projections, MLP) processed together; bounds scratch memory for large batches.</summary>
    public int RowTile { get; init; } = 2048;
}

/// <summary>
/// A decoder-only transformer ready to run: architecture, resolved spec and weights bound to their storage
/// (memory-mapped checkpoint, or F32/BF16 tensors in memory such as a training arena).
/// <para>The forward API: <see cref="Forward"/> runs a <see cref="TokenBatch"/> (right/left padding via the mask,
/// optional positions, optional <see cref="KvCache"/>) and streams the logits of the positions a
/// <see cref="LogitsSink"/> wants — full logits, last-position logits, top-k ids + logits, next-token CE /
/// log-probs — without materialising <c>(B, T, V)</c> unless asked to. One forward runs at a time per model
/// (calls are serialised); each forward uses every core.</para>
/// </summary>
public sealed partial class TransformerModel : IDisposable
{
    private readonly IWeightSource _source;
    private readonly bool _ownsSource;
    private readonly object _forwardLock = new();
    private readonly Workspace _workspace = new();
    private readonly RopeTable? _rope;
    private readonly float[]? _alibiSlopes;

    private TransformerModel(Architecture architecture, TransformerSpec spec, ModelWeights weights, IWeightSource source, bool ownsSource, ModelOptions options, ModelConfig? config)
    {
        Architecture = architecture;
        Spec = spec;
        Weights = weights;
        _source = source;
        _ownsSource = ownsSource;
        Options = options;
        Config = config;
        if (spec.Position == PositionKind.Rope) _rope = new RopeTable(spec.Rope!);
        if (spec.Position == PositionKind.Alibi) _alibiSlopes = AlibiSlopes(spec.NumHeads, spec.AlibiBiasMax);
    }

    public Architecture Architecture { get; }

    public TransformerSpec Spec { get; }

    /// <summary>The bound weights (views into the source).</summary>
    public ModelWeights Weights { get; }

    public ModelOptions Options { get; }

    /// <summary>The config.json the model was loaded from (null when built from a spec).</summary>
    public ModelConfig? Config { get; }

    /// <summary>Where the weights live.</summary>
    public string Location => _source.Location;

    /// <summary>Optional observer of named intermediates.</summary>
    public ITensorObserver? Observer { get; set; }

    /// <summary>Bytes of scratch memory held for forwards.</summary>
    public long WorkspaceBytes => _workspace.Bytes();

    /// <summary>
    /// Loads a Hugging Face model folder: config.json picks the architecture (an unknown one is an error listing the
    /// supported families), the spec is resolved and validated, then every tensor of the checkpoint is checked
    /// (names, shapes, dtypes) and bound without copying.
    /// </summary>
    /// <exception cref="ModelConfigException">config.json is missing, malformed, incomplete or of an unsupported architecture.</exception>
    /// <exception cref="ModelLoadException">A weight is missing or has the wrong shape or dtype.</exception>
    public static TransformerModel Load(string folder, ModelOptions? options = null)
    {
        using var modelFolder = ModelFolder.Open(folder);
        var config = modelFolder.Config!;
        var architecture = ArchitectureRegistry.Resolve(config);
        var spec = architecture.Resolve(config);
        var source = SafetensorsWeightSource.Open(folder);
        try
        {
            return Create(architecture, spec, source, ownsSource: true, options, config);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Binds a spec to weights from any source (a training arena, freshly initialised tensors, a checkpoint).</summary>
    public static TransformerModel Create(Architecture architecture, TransformerSpec spec, IWeightSource source, bool ownsSource = false, ModelOptions? options = null, ModelConfig? config = null)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        var weights = ModelWeights.Bind(spec, architecture.Names, architecture.Parameters(spec), source);
        return new TransformerModel(architecture, spec, weights, source, ownsSource, options ?? new ModelOptions(), config);
    }

    /// <summary>A KV cache for incremental decoding of <paramref name="batchSize"/> rows up to <paramref name="capacity"/> tokens.</summary>
    public KvCache CreateCache(int batchSize, int capacity) =>
        new(Spec.NumLayers, batchSize, capacity, Spec.NumKvHeads, Spec.HeadDim);

    /// <summary>
    /// ALiBi slopes as transformers' <c>build_mpt_alibi_tensor</c>: n = heads rounded up to a power of two,
    /// <c>slope_k = 2^(−k · biasMax / n)</c> for k = 1..n; when n ≠ heads, the odd-indexed slopes
    /// (<c>slopes[1::2]</c>) come first, then the even ones, and the first <c>heads</c> are kept.
    /// </summary>
    public static float[] AlibiSlopes(int heads, double biasMax)
    {
        int n = 1;
        while (n < heads) n *= 2;
        var slopes = Enumerable.Range(1, n).Select(k => (float)(1.0 / Math.Pow(2, k * biasMax / n))).ToArray();
        if (n == heads) return slopes;
        return slopes.Where((_, i) => i % 2 == 1).Concat(slopes.Where((_, i) => i % 2 == 0)).Take(heads).ToArray();
    }

    public void Dispose()
    {
        _workspace.Dispose();
        Weights.Dispose();
        if (_ownsSource) _source.Dispose();
    }
}
