using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models.Weights;

/// <summary>
/// A vector parameter (norm weight, bias) as F32: a view into the source when it is F32 (so in-place updates of a
/// training arena are seen), otherwise a converted copy owned by the <see cref="ModelWeights"/>.
/// </summary>
public readonly unsafe struct VectorParam
{
    internal VectorParam(float* pointer, int length)
    {
        Pointer = pointer;
        Length = length;
    }

    public float* Pointer { get; }

    public int Length { get; }

    public bool IsEmpty => Pointer == null;

    public ReadOnlySpan<float> Span => IsEmpty ? default : new ReadOnlySpan<float>(Pointer, Length);
}

/// <summary>A norm's weight and optional bias.</summary>
public readonly record struct NormWeights(VectorParam Weight, VectorParam Bias);

/// <summary>
/// A linear layer <c>y = x · Wᵀ + b</c> (<c>In → Out</c>) whose output columns may come from several stored tensors:
/// Llama's q, k and v projections form one QKV layer of three parts writing columns [0, H·D), [H·D, (H+KV)·D) and
/// the rest; Phi-3's qkv_proj is one part. Parts are multiplied in place (GEMM with the stored layout: (out, in) or
/// GPT-2's (in, out)), F32 or BF16, so fusing never copies a weight.
/// </summary>
public sealed unsafe class Linear
{
    /// <summary>One stored tensor feeding output columns [Offset, Offset + Count).</summary>
    public sealed record Part(WeightView Weight, WeightLayout Layout, int Offset, int Count, VectorParam Bias);

    /// <summary>
    /// The parts' common dtype when every part is stored (out, in), so a few rows can go through one
    /// <see cref="GemmVector"/> dispatch for all parts; null otherwise.
    /// </summary>
    private readonly DType? _vectorDType;

    internal Linear(int inFeatures, int outFeatures, IReadOnlyList<Part> parts)
    {
        In = inFeatures;
        Out = outFeatures;
        Parts = parts;
        if (parts.Count > 0 && parts.All(p => p.Layout == WeightLayout.OutIn && p.Weight.DType == parts[0].Weight.DType)
            && parts[0].Weight.DType is DType.F32 or DType.BF16)
            _vectorDType = parts[0].Weight.DType;
    }

    public int In { get; }

    public int Out { get; }

    public IReadOnlyList<Part> Parts { get; }

    /// <summary>Bytes of weights read per use (for bandwidth accounting).</summary>
    public long WeightBytes => Parts.Sum(p => p.Weight.ElementCount * p.Weight.DType.Size());

    /// <summary>
    /// <c>y[r, 0..Out) (+)= x[r, 0..In) · Wᵀ + b</c> for <paramref name="rows"/> rows; <c>x</c> and <c>y</c> have row
    /// strides <paramref name="ldx"/> and <paramref name="ldy"/>.
    /// </summary>
    public void Forward(float* x, int rows, int ldx, float* y, int ldy, bool accumulate)
    {
        if (rows <= 0) return;
        if (rows <= GemmVector.MaxRows && In > 0 && _vectorDType is { } dtype)
        {
            // Decoding: all parts in one matrix-vector dispatch, each part computed exactly as Gemm computes it alone
            // (its path for at most GemmVector.MaxRows rows), so the bits are the same.
            ArgumentOutOfRangeException.ThrowIfLessThan(ldx, In);
            ArgumentOutOfRangeException.ThrowIfLessThan(ldy, Out);
            Span<GemmVector.Segment> segments = stackalloc GemmVector.Segment[Parts.Count];
            for (int i = 0; i < Parts.Count; i++) segments[i] = new GemmVector.Segment(Parts[i].Weight.Pointer, In, Parts[i].Count, y + Parts[i].Offset);
            bool simd = Vector256.IsHardwareAccelerated;
            if (dtype == DType.F32) GemmVector.Run<float>(Parallelism.MaxThreads, simd, rows, In, x, ldx, segments, dotForm: true, ldy, 1, accumulate);
            else GemmVector.Run<ushort>(Parallelism.MaxThreads, simd, rows, In, x, ldx, segments, dotForm: true, ldy, 1, accumulate);
            foreach (var p in Parts)
                if (!p.Bias.IsEmpty) AddBias(y + p.Offset, rows, ldy, p.Bias);
            return;
        }
        var a = new ReadOnlySpan<float>(x, checked((rows - 1) * ldx + In));
        foreach (var p in Parts)
        {
            var w = p.Weight;
            bool transB = p.Layout == WeightLayout.OutIn;
            // One GEMM per slice of at most 2^31 weight elements (spans are int-indexed; only huge heads need more than one).
            int sliceCols = transB ? (int)Math.Min(p.Count, int.MaxValue / In) : p.Count;
            if (!transB && (long)In * p.Count > int.MaxValue) throw new NotSupportedException($"weight '{w.Name}' in (in, out) layout exceeds 2^31 elements");
            for (int c0 = 0; c0 < p.Count; c0 += sliceCols)
            {
                int n = Math.Min(sliceCols, p.Count - c0);
                var c = new Span<float>(y + p.Offset + c0, checked((rows - 1) * ldy + n));
                int ldb = transB ? In : p.Count;
                long bOffset = transB ? (long)c0 * In : c0;
                int bLength = transB ? n * In : (In - 1) * p.Count + n;
                if (w.DType == DType.F32)
                    Gemm.MatMul(false, transB, rows, n, In, a, ldx, new ReadOnlySpan<float>((float*)w.Pointer + bOffset, bLength), ldb, c, ldy, accumulate);
                else
                    Gemm.MatMulBf16(false, transB, rows, n, In, a, ldx, new ReadOnlySpan<ushort>((ushort*)w.Pointer + bOffset, bLength), ldb, c, ldy, accumulate);
            }
            if (!p.Bias.IsEmpty) AddBias(y + p.Offset, rows, ldy, p.Bias);
        }
    }

    private static void AddBias(float* y, int rows, int ldy, VectorParam bias)
    {
        float* b = bias.Pointer;
        int n = bias.Length;
        ParallelRows.For(rows, n, (start, end) =>
        {
            var bs = new ReadOnlySpan<float>(b, n);
            for (int r = start; r < end; r++)
            {
                var row = new Span<float>(y + (long)r * ldy, n);
                System.Numerics.Tensors.TensorPrimitives.Add(row, bs, row);
            }
        });
    }
}

/// <summary>A mixture-of-experts expert: a gated MLP ([gate | up] columns, then down).</summary>
public sealed record ExpertWeights(Linear GateUp, Linear Down);

/// <summary>The weights of one transformer block, bound to their storage.</summary>
public sealed class LayerWeights
{
    public required NormWeights AttentionNorm { get; init; }

    public required NormWeights MlpNorm { get; init; }

    /// <summary>Hidden → fused [q | k | v] columns in the architecture's QKV layout (<see cref="TransformerSpec.QkvColumns"/>).</summary>
    public required Linear Qkv { get; init; }

    public required Linear Output { get; init; }

    /// <summary>Gated MLP: hidden → [gate | up] (width 2·I). Plain MLP: hidden → up (width I). Null for mixtures.</summary>
    public Linear? Up { get; init; }

    /// <summary>I → hidden. Null for mixtures.</summary>
    public Linear? Down { get; init; }

    /// <summary>Mixture router (hidden → experts).</summary>
    public Linear? Router { get; init; }

    public IReadOnlyList<ExpertWeights>? Experts { get; init; }
}

/// <summary>
/// All weights of a model bound to their storage and checked against the parameter layout (names, shapes,
/// dtypes) before the first forward. Built by <see cref="Bind"/>; owns converted copies of non-F32 vectors.
/// </summary>
public sealed unsafe class ModelWeights : IDisposable
{
    private readonly List<GCHandle> _owned = [];

    private ModelWeights() { }

    public WeightView Embedding { get; private set; }

    public WeightView? PositionEmbedding { get; private set; }

    public NormWeights FinalNorm { get; private set; }

    /// <summary>The output projection (the embedding matrix when tied).</summary>
    public Linear LmHead { get; private set; } = null!;

    public IReadOnlyList<LayerWeights> Layers { get; private set; } = [];

    /// <summary>Bytes of weights read by one decoding step (every matrix once, all experts of a mixture counted).</summary>
    public long BytesPerToken { get; private set; }

    /// <summary>
    /// Checks every parameter of <paramref name="parameters"/> against <paramref name="source"/> (presence, float
    /// dtype, exact shape), then binds views. Nothing is read before everything is checked.
    /// </summary>
    /// <exception cref="ModelLoadException">A tensor is missing or has the wrong shape or dtype; the message names it.</exception>
    public static ModelWeights Bind(TransformerSpec spec, WeightNames names, IReadOnlyList<ParameterInfo> parameters, IWeightSource source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(source);
        var resolved = new Dictionary<ParameterInfo, string>();
        foreach (var p in parameters) resolved[p] = Resolve(p, names, source, spec);
        var w = new ModelWeights();
        try
        {
            w.Build(spec, parameters, resolved, source);
            return w;
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    private static string Resolve(ParameterInfo p, WeightNames names, IWeightSource source, TransformerSpec spec)
    {
        foreach (var candidate in names.Candidates(p.Name))
        {
            if (!source.TryDescribe(candidate, out var dtype, out var shape)) continue;
            if (!dtype.IsFloat())
                throw new ModelLoadException($"{source.Location}: tensor '{candidate}' is {dtype}, expected a floating-point type");
            if (!shape.Dims.SequenceEqual(p.Shape))
                throw new ModelLoadException($"{source.Location}: tensor '{candidate}' has shape {shape}, expected [{string.Join(", ", p.Shape)}]",
                    $"config.json says hidden {spec.HiddenSize}, heads {spec.NumHeads}/{spec.NumKvHeads} of dim {spec.HeadDim}, intermediate {spec.IntermediateSize}, vocab {spec.VocabSize}; the config and weights do not belong together");
            return candidate;
        }
        var leaf = p.Name.Split('.').TakeLast(2).First();
        var similar = source.Names.Where(n => n.Contains(leaf, StringComparison.Ordinal)).Take(3).ToList();
        throw new ModelLoadException($"{source.Location}: tensor '{p.Name}' [{string.Join(", ", p.Shape)}] is missing",
            p.Role == ParameterRole.LmHead ? "config.json says tie_word_embeddings is false, so the checkpoint needs its own output projection"
            : similar.Count > 0 ? $"the checkpoint has e.g. {string.Join(", ", similar)}: is it a {spec.ModelType} model?"
            : $"the checkpoint is incomplete or not a {spec.ModelType} model");
    }

    private void Build(TransformerSpec spec, IReadOnlyList<ParameterInfo> parameters, Dictionary<ParameterInfo, string> resolved, IWeightSource source)
    {
        var views = new Dictionary<(ParameterRole, int, int), WeightView>();
        foreach (var p in parameters) views[(p.Role, p.Layer, p.Expert)] = source.Get(resolved[p]);
        WeightView? Find(ParameterRole role, int layer = -1, int expert = -1) => views.TryGetValue((role, layer, expert), out var v) ? v : null;
        WeightView Need(ParameterRole role, int layer = -1, int expert = -1) => Find(role, layer, expert) ?? throw new InvalidOperationException($"{role} of layer {layer} not bound");
        VectorParam Vec(ParameterRole role, int layer = -1) => Find(role, layer) is { } v ? Vector(v) : default;
        var layout = spec.LinearLayout;
        int d = spec.HiddenSize, hd = spec.NumHeads * spec.HeadDim, kvd = spec.NumKvHeads * spec.HeadDim, inter = spec.IntermediateSize;

        Embedding = Need(ParameterRole.Embedding);
        PositionEmbedding = Find(ParameterRole.PositionEmbedding);
        FinalNorm = new NormWeights(Vec(ParameterRole.FinalNormWeight), Vec(ParameterRole.FinalNormBias));
        var head = Find(ParameterRole.LmHead) ?? Embedding; // tied: the embedding matrix (vocab, hidden) is the head
        LmHead = new Linear(d, spec.VocabSize, [new Linear.Part(head, WeightLayout.OutIn, 0, spec.VocabSize, default)]);

        var layers = new LayerWeights[spec.NumLayers];
        for (int l = 0; l < spec.NumLayers; l++)
        {
            Linear qkv = spec.QkvLayout == QkvLayout.Separate
                ? new Linear(d, spec.QkvWidth,
                [
                    new Linear.Part(Need(ParameterRole.Query, l), layout, 0, hd, Vec(ParameterRole.QueryBias, l)),
                    new Linear.Part(Need(ParameterRole.Key, l), layout, hd, kvd, Vec(ParameterRole.KeyBias, l)),
                    new Linear.Part(Need(ParameterRole.Value, l), layout, hd + kvd, kvd, Vec(ParameterRole.ValueBias, l)),
                ])
                : new Linear(d, spec.QkvWidth, [new Linear.Part(Need(ParameterRole.Qkv, l), layout, 0, spec.QkvWidth, Vec(ParameterRole.QkvBias, l))]);
            var output = new Linear(hd, d, [new Linear.Part(Need(ParameterRole.Output, l), layout, 0, d, Vec(ParameterRole.OutputBias, l))]);
            Linear? up = null, down = null, router = null;
            ExpertWeights[]? experts = null;
            switch (spec.Mlp)
            {
                case MlpKind.Gated when spec.FusedGateUp:
                    up = new Linear(d, 2 * inter, [new Linear.Part(Need(ParameterRole.GateUp, l), layout, 0, 2 * inter, Vec(ParameterRole.GateUpBias, l))]);
                    break;
                case MlpKind.Gated:
                    up = new Linear(d, 2 * inter,
                    [
                        new Linear.Part(Need(ParameterRole.Gate, l), layout, 0, inter, Vec(ParameterRole.GateBias, l)),
                        new Linear.Part(Need(ParameterRole.Up, l), layout, inter, inter, Vec(ParameterRole.UpBias, l)),
                    ]);
                    break;
                case MlpKind.Plain:
                    up = new Linear(d, inter, [new Linear.Part(Need(ParameterRole.Up, l), layout, 0, inter, Vec(ParameterRole.UpBias, l))]);
                    break;
                case MlpKind.MixtureOfExperts:
                    router = new Linear(d, spec.NumExperts, [new Linear.Part(Need(ParameterRole.Router, l), layout, 0, spec.NumExperts, default)]);
                    experts = new ExpertWeights[spec.NumExperts];
                    for (int e = 0; e < spec.NumExperts; e++)
                    {
                        experts[e] = new ExpertWeights(
                            new Linear(d, 2 * inter,
                            [
                                new Linear.Part(Need(ParameterRole.ExpertGate, l, e), layout, 0, inter, default),
                                new Linear.Part(Need(ParameterRole.ExpertUp, l, e), layout, inter, inter, default),
                            ]),
                            new Linear(inter, d, [new Linear.Part(Need(ParameterRole.ExpertDown, l, e), layout, 0, d, default)]));
                    }
                    break;
            }
            if (spec.Mlp != MlpKind.MixtureOfExperts)
                down = new Linear(inter, d, [new Linear.Part(Need(ParameterRole.Down, l), layout, 0, d, Vec(ParameterRole.DownBias, l))]);
            layers[l] = new LayerWeights
            {
                AttentionNorm = new NormWeights(Vec(ParameterRole.AttentionNormWeight, l), Vec(ParameterRole.AttentionNormBias, l)),
                MlpNorm = new NormWeights(Vec(ParameterRole.MlpNormWeight, l), Vec(ParameterRole.MlpNormBias, l)),
                Qkv = qkv,
                Output = output,
                Up = up,
                Down = down,
                Router = router,
                Experts = experts,
            };
        }
        Layers = layers;
        BytesPerToken = LmHead.WeightBytes + layers.Sum(l => l.Qkv.WeightBytes + l.Output.WeightBytes + (l.Up?.WeightBytes ?? 0) + (l.Down?.WeightBytes ?? 0)
            + (l.Router?.WeightBytes ?? 0) + (l.Experts?.Sum(e => e.GateUp.WeightBytes + e.Down.WeightBytes) ?? 0));
    }

    private VectorParam Vector(WeightView v)
    {
        int n = checked((int)v.ElementCount);
        if (v.DType == DType.F32) return new VectorParam((float*)v.Pointer, n);
        var copy = GC.AllocateUninitializedArray<float>(n, pinned: true);
        BFloat16Conversion.ToSingle(v.AsBFloat16(), copy);
        var handle = GCHandle.Alloc(copy, GCHandleType.Pinned);
        _owned.Add(handle);
        return new VectorParam((float*)handle.AddrOfPinnedObject(), n);
    }

    public void Dispose()
    {
        foreach (var h in _owned) h.Free();
        _owned.Clear();
    }
}
