using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Training.Data;

namespace FuseSharp.Training;

/// <summary>Options of a trainable transformer.</summary>
public sealed record TrainableTransformerOptions
{
    /// <summary>
    /// Keep only each block's input between the passes and recompute the block's forward just before its backward
    /// (activation recomputation; Chen et al. 2016, https://arxiv.org/abs/1604.06174): activation memory falls from
    /// about <c>L·N·(10d + 3I)</c> floats to <c>L·N·d</c> plus one block's, for one extra forward per step. The gradients
    /// are bit-identical either way.
    /// </summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Sliding-window boundary, as for inference (<see cref="ModelOptions.SlidingWindowConvention"/>).</summary>
    public SlidingWindowConvention SlidingWindowConvention { get; init; } = SlidingWindowConvention.Transformers;
}

/// <summary>
/// Any dense model the forward engine runs (Llama, Mistral, Qwen2, Phi-3, Gemma, InternLM2, GPT-2, GPT-NeoX, MPT),
/// trainable: the parameters live in a float32 <see cref="TensorArena"/> laid out by the engine's
/// <see cref="ParameterLayout"/> under the checkpoint's own names, the engine's <see cref="ModelWeights"/> are bound
/// to that arena (so its projections, norms and attention are the ones inference uses, and an optimizer step is seen
/// by the next forward), and the backward runs the kernels of <c>Training/Kernels</c> block by block in reverse
/// (llm.c's layout: one explicit backward per layer kernel, the forward keeping exactly what they read).
/// <para>Mixture-of-experts models (Mixtral) are refused with a clear error.</para>
/// </summary>
public sealed unsafe partial class TrainableTransformer : ITrainableModel
{
    private readonly Models.Workspace _ws = new();
    private readonly TransformerModel _engine;
    private readonly RopeTable? _rope;
    private readonly float[] _alibi;
    private readonly int[] _qCols, _kCols, _vCols;
    private readonly Dictionary<string, int> _index;
    private readonly int[] _biasOf;
    private readonly NormParams _finalNorm;
    private readonly NormParams[] _norm1, _norm2;
    private readonly int _embedding, _positionEmbedding;

    private TrainableTransformer(Architecture architecture, TransformerSpec spec, ModelConfig config, TensorArena parameters, TrainableTransformerOptions options)
    {
        Architecture = architecture;
        Spec = spec;
        Config = config;
        Parameters = parameters;
        Options = options;
        Gradients = parameters.CreateLike();
        var views = parameters.Entries.ToDictionary(e => e.Name, e => parameters.View(e.Name), StringComparer.Ordinal);
        _engine = TransformerModel.Create(architecture, spec, new TensorWeightSource(views, ownsTensors: true, location: string.IsNullOrEmpty(config.Path) ? "training arena" : config.Path), ownsSource: true,
            new ModelOptions { SlidingWindowConvention = options.SlidingWindowConvention }, config);
        _index = parameters.Entries.Select((e, i) => (e.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
        _biasOf = parameters.Entries.Select(e => e.Name.EndsWith(".weight", StringComparison.Ordinal) && _index.TryGetValue(e.Name[..^".weight".Length] + ".bias", out var b) ? b : -1).ToArray();

        var byRole = new Dictionary<(ParameterRole, int), int>();
        var infos = architecture.Parameters(spec);
        for (int i = 0; i < infos.Count; i++) byRole[(infos[i].Role, infos[i].Layer)] = i; // arena order = layout order
        int Find(ParameterRole role, int layer = -1) => byRole.TryGetValue((role, layer), out var i) ? i : -1;
        _embedding = Find(ParameterRole.Embedding);
        _positionEmbedding = Find(ParameterRole.PositionEmbedding);
        _finalNorm = new NormParams(Find(ParameterRole.FinalNormWeight), Find(ParameterRole.FinalNormBias));
        _norm1 = Enumerable.Range(0, spec.NumLayers).Select(l => new NormParams(Find(ParameterRole.AttentionNormWeight, l), Find(ParameterRole.AttentionNormBias, l))).ToArray();
        _norm2 = Enumerable.Range(0, spec.NumLayers).Select(l => new NormParams(Find(ParameterRole.MlpNormWeight, l), Find(ParameterRole.MlpNormBias, l))).ToArray();

        if (spec.Position == PositionKind.Rope) _rope = new RopeTable(spec.Rope!);
        _alibi = spec.Position == PositionKind.Alibi ? TransformerModel.AlibiSlopes(spec.NumHeads, spec.AlibiBiasMax) : [];
        int group = spec.NumHeads / spec.NumKvHeads;
        _qCols = Enumerable.Range(0, spec.NumHeads).Select(h => spec.QkvColumns(h, h / group).Q).ToArray();
        _kCols = Enumerable.Range(0, spec.NumKvHeads).Select(j => spec.QkvColumns(0, j).K).ToArray();
        _vCols = Enumerable.Range(0, spec.NumKvHeads).Select(j => spec.QkvColumns(0, j).V).ToArray();
    }

    /// <summary>The index of a norm's weight and bias (−1: none) in the arenas.</summary>
    private readonly record struct NormParams(int Weight, int Bias);

    public Architecture Architecture { get; }

    public TransformerSpec Spec { get; }

    public ModelConfig Config { get; }

    public TrainableTransformerOptions Options { get; }

    /// <summary>The parameters, one float32 view per checkpoint tensor (tied heads appear once, as the embedding).</summary>
    public TensorArena Parameters { get; }

    public TensorArena Gradients { get; }

    public int VocabSize => Spec.VocabSize;

    public int MaxPositions => Spec.MaxPositions;

    /// <summary>
    /// The inference engine bound to the same parameter arena: generation, scoring or evaluation of the model as
    /// it is being trained (it sees every optimizer step; do not run it concurrently with <see cref="Run"/>).
    /// </summary>
    public TransformerModel Engine => _engine;

    /// <summary>Bytes of activations and scratch held between the passes (grows to the largest micro-batch seen).</summary>
    public long ActivationBytes => _ws.Bytes();

    /// <summary>
    /// Loads a Hugging Face model folder for training: the architecture and spec come from config.json exactly as
    /// for inference, every tensor is checked against the engine's parameter layout, and the weights (F32, BF16, F16)
    /// are read into a float32 arena under their stored names.
    /// </summary>
    /// <exception cref="ModelConfigException">config.json is missing, invalid or of an unknown architecture.</exception>
    /// <exception cref="ModelLoadException">A weight is missing or has the wrong shape or dtype.</exception>
    /// <exception cref="TrainingException">The architecture cannot be trained (mixture of experts).</exception>
    public static TrainableTransformer Load(string folder, TrainableTransformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        using var modelFolder = ModelFolder.Open(folder);
        using var source = SafetensorsWeightSource.Open(folder);
        return Create(modelFolder.Config!, source, options);
    }

    /// <summary>
    /// A trainable model from a config and any weight source (a checkpoint, freshly initialised tensors): the tensors
    /// are checked against the engine's parameter layout, then copied into a float32 arena under their source names.
    /// </summary>
    /// <exception cref="ModelConfigException">The config is invalid or of an unknown architecture.</exception>
    /// <exception cref="ModelLoadException">A weight is missing or has the wrong shape or dtype.</exception>
    /// <exception cref="TrainingException">The architecture cannot be trained (mixture of experts).</exception>
    public static TrainableTransformer Create(ModelConfig config, IWeightSource source, TrainableTransformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(source);
        var architecture = ArchitectureRegistry.Resolve(config);
        var spec = architecture.Resolve(config);
        RequireTrainable(spec, string.IsNullOrEmpty(config.Path) ? source.Location : config.Path);
        var infos = architecture.Parameters(spec);
        // The engine's binding checks presence, dtype and shape of every tensor with its messages; nothing is read yet.
        ModelWeights.Bind(spec, architecture.Names, infos, source).Dispose();
        var stored = infos.Select(p => architecture.Names.Candidates(p.Name).First(n => source.TryDescribe(n, out _, out _))).ToList();
        var arena = TensorArena.Create(infos.Select((p, i) => (stored[i], new Shape(p.Shape))));
        try
        {
            for (int i = 0; i < arena.Count; i++)
            {
                var view = source.Get(stored[i]);
                if (view.DType == DType.F32) view.AsSingles().CopyTo(arena.Span(i));
                else BFloat16Conversion.ToSingle(view.AsBFloat16(), arena.Span(i)); // exact widening
            }
            return new TrainableTransformer(architecture, spec, config, arena, options ?? new TrainableTransformerOptions());
        }
        catch
        {
            arena.Dispose();
            throw;
        }
    }

    /// <summary>A loader for <see cref="Trainer.Run"/>: <c>trainer.Run(model, TrainableTransformer.Loader(options))</c>.</summary>
    public static Func<string, ITrainableModel> Loader(TrainableTransformerOptions? options = null) => folder => Load(folder, options);

    /// <exception cref="TrainingException">The spec has a part without a backward (mixture of experts).</exception>
    public static void RequireTrainable(TransformerSpec spec, string what)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Mlp == MlpKind.MixtureOfExperts)
            throw new TrainingException($"{what}: {spec.ModelType} is a mixture-of-experts model; training mixtures of experts is not supported",
                "train a dense model (llama, mistral, qwen2, phi3, gemma, internlm2, gpt2, gpt_neox, mpt); mixtures can still be merged, evaluated and used for generation");
    }

    /// <summary>The logits <c>(B·T, V)</c> of a micro-batch as training computes them (for checks and evaluation tools).</summary>
    public float[] Logits(MicroBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var result = new float[checked((long)batch.PositionCount * VocabSize)];
        Forward(batch, (first, count, logits) => logits.CopyTo(result.AsSpan(first * VocabSize, count * VocabSize)), backward: false);
        return result;
    }

    public void Run(MicroBatch batch, MicroBatchLoss loss, bool backward)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(loss);
        Forward(batch, (first, count, logits) => loss.Apply(first, count, logits, VocabSize, backward), backward);
    }

    public void Dispose()
    {
        _engine.Dispose();
        _ws.Dispose();
        Gradients.Dispose();
        Parameters.Dispose();
    }

    private float* Param(int index) => Parameters.Pointer + Parameters.Entries[index].Offset;

    private float* Grad(int index) => Gradients.Pointer + Gradients.Entries[index].Offset;

    private Span<float> ParamSpan(int index) => index < 0 ? default : Parameters.Span(index);

    private Span<float> GradSpan(int index) => index < 0 ? default : Gradients.Span(index);
}
