namespace FuseSharp.Models;

/// <summary>What a parameter is to the engine.</summary>
public enum ParameterRole
{
    Embedding,
    PositionEmbedding,
    FinalNormWeight,
    FinalNormBias,
    LmHead,
    AttentionNormWeight,
    AttentionNormBias,
    MlpNormWeight,
    MlpNormBias,
    Query,
    Key,
    Value,
    Qkv,
    QueryBias,
    KeyBias,
    ValueBias,
    QkvBias,
    Output,
    OutputBias,
    Gate,
    Up,
    GateUp,
    Down,
    GateBias,
    UpBias,
    GateUpBias,
    DownBias,
    Router,
    ExpertGate,
    ExpertUp,
    ExpertDown,
}

/// <summary>How a freshly initialised parameter is filled (transformers' <c>_init_weights</c> defaults).</summary>
public enum ParameterInit
{
    /// <summary>N(0, initializer_range): embeddings and linear weights.</summary>
    Normal,

    /// <summary>Norm weights.</summary>
    Ones,

    /// <summary>Biases, and norm weights stored as w − 1 (Gemma).</summary>
    Zeros,
}

/// <summary>One tensor of a model as its checkpoint stores it: name, shape (stored layout), role and place.</summary>
public sealed record ParameterInfo(string Name, long[] Shape, ParameterRole Role, int Layer = -1, int Expert = -1)
{
    /// <summary>Default initialisation of this parameter.</summary>
    public ParameterInit Init { get; init; } = ParameterInit.Normal;

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}

/// <summary>
/// The parameter list of a model, derived from its spec and weight names: the one place that knows which
/// tensors a checkpoint must contain and their shapes. The loader checks checkpoints against it, init-model
/// creates it, and a training engine can lay out its parameter arena from it (names match the checkpoint, so
/// saving is writing the arena's views under their names).
/// </summary>
public static class ParameterLayout
{
    /// <summary>Every parameter, in a fixed order: embeddings, layers (attention, MLP), final norm, head.</summary>
    public static IReadOnlyList<ParameterInfo> Build(TransformerSpec spec, WeightNames names)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(names);
        var list = new List<ParameterInfo>();
        long d = spec.HiddenSize, hd = (long)spec.NumHeads * spec.HeadDim, kvd = (long)spec.NumKvHeads * spec.HeadDim, inter = spec.IntermediateSize;
        bool ln = spec.Norm == NormKind.LayerNorm;
        float offsetNorm = spec.NormWeightOffset;

        void Add(string name, ParameterRole role, int layer, int expert, params long[] shape) =>
            list.Add(new ParameterInfo(name, shape, role, layer, expert) { Init = InitOf(role, offsetNorm) });
        // A linear layer (out, in) as stored: transposed for Conv1D checkpoints.
        void Linear(string name, ParameterRole role, int layer, int expert, long outF, long inF) =>
            Add(name + ".weight", role, layer, expert, spec.LinearLayout == WeightLayout.InOut ? [inF, outF] : [outF, inF]);
        void Norm(string prefix, ParameterRole w, ParameterRole b, int layer)
        {
            Add(prefix + ".weight", w, layer, -1, d);
            if (ln && spec.NormBias) Add(prefix + ".bias", b, layer, -1, d);
        }

        Add(names.Embedding, ParameterRole.Embedding, -1, -1, spec.VocabSize, d);
        if (spec.Position == PositionKind.Learned)
            Add(names.PositionEmbedding ?? throw new ArgumentException("learned positions need a position-embedding name"), ParameterRole.PositionEmbedding, -1, -1, spec.MaxPositions, d);
        for (int l = 0; l < spec.NumLayers; l++)
        {
            string L(string rel) => names.InLayer(l, rel);
            Norm(L(names.AttentionNorm), ParameterRole.AttentionNormWeight, ParameterRole.AttentionNormBias, l);
            if (spec.QkvLayout == QkvLayout.Separate)
            {
                Linear(L(names.Query), ParameterRole.Query, l, -1, hd, d);
                Linear(L(names.Key), ParameterRole.Key, l, -1, kvd, d);
                Linear(L(names.Value), ParameterRole.Value, l, -1, kvd, d);
                if (spec.QkvBias)
                {
                    Add(L(names.Query) + ".bias", ParameterRole.QueryBias, l, -1, hd);
                    Add(L(names.Key) + ".bias", ParameterRole.KeyBias, l, -1, kvd);
                    Add(L(names.Value) + ".bias", ParameterRole.ValueBias, l, -1, kvd);
                }
            }
            else
            {
                Linear(L(names.Qkv), ParameterRole.Qkv, l, -1, spec.QkvWidth, d);
                if (spec.QkvBias) Add(L(names.Qkv) + ".bias", ParameterRole.QkvBias, l, -1, spec.QkvWidth);
            }
            Linear(L(names.Output), ParameterRole.Output, l, -1, d, hd);
            if (spec.OutputBias) Add(L(names.Output) + ".bias", ParameterRole.OutputBias, l, -1, d);
            Norm(L(names.MlpNorm), ParameterRole.MlpNormWeight, ParameterRole.MlpNormBias, l);
            switch (spec.Mlp)
            {
                case MlpKind.Gated when spec.FusedGateUp:
                    Linear(L(names.GateUp), ParameterRole.GateUp, l, -1, 2 * inter, d);
                    if (spec.MlpBias) Add(L(names.GateUp) + ".bias", ParameterRole.GateUpBias, l, -1, 2 * inter);
                    break;
                case MlpKind.Gated:
                    Linear(L(names.Gate), ParameterRole.Gate, l, -1, inter, d);
                    Linear(L(names.Up), ParameterRole.Up, l, -1, inter, d);
                    if (spec.MlpBias)
                    {
                        Add(L(names.Gate) + ".bias", ParameterRole.GateBias, l, -1, inter);
                        Add(L(names.Up) + ".bias", ParameterRole.UpBias, l, -1, inter);
                    }
                    break;
                case MlpKind.Plain:
                    Linear(L(names.Up), ParameterRole.Up, l, -1, inter, d);
                    if (spec.MlpBias) Add(L(names.Up) + ".bias", ParameterRole.UpBias, l, -1, inter);
                    break;
                case MlpKind.MixtureOfExperts:
                    Linear(L(names.Router), ParameterRole.Router, l, -1, spec.NumExperts, d);
                    for (int e = 0; e < spec.NumExperts; e++)
                    {
                        Linear(names.InExpert(l, e, names.ExpertGate), ParameterRole.ExpertGate, l, e, inter, d);
                        Linear(names.InExpert(l, e, names.ExpertUp), ParameterRole.ExpertUp, l, e, inter, d);
                        Linear(names.InExpert(l, e, names.ExpertDown), ParameterRole.ExpertDown, l, e, d, inter);
                    }
                    break;
            }
            if (spec.Mlp != MlpKind.MixtureOfExperts)
            {
                Linear(L(names.Down), ParameterRole.Down, l, -1, d, inter);
                if (spec.MlpBias) Add(L(names.Down) + ".bias", ParameterRole.DownBias, l, -1, d);
            }
        }
        Norm(names.FinalNorm, ParameterRole.FinalNormWeight, ParameterRole.FinalNormBias, -1);
        if (!spec.TiedEmbeddings) Add(names.LmHead, ParameterRole.LmHead, -1, -1, spec.VocabSize, d);
        return list;
    }

    private static ParameterInit InitOf(ParameterRole role, float normOffset) => role switch
    {
        ParameterRole.FinalNormWeight or ParameterRole.AttentionNormWeight or ParameterRole.MlpNormWeight => normOffset != 0 ? ParameterInit.Zeros : ParameterInit.Ones,
        ParameterRole.FinalNormBias or ParameterRole.AttentionNormBias or ParameterRole.MlpNormBias or ParameterRole.QueryBias or ParameterRole.KeyBias
            or ParameterRole.ValueBias or ParameterRole.QkvBias or ParameterRole.OutputBias or ParameterRole.GateBias or ParameterRole.UpBias
            or ParameterRole.GateUpBias or ParameterRole.DownBias => ParameterInit.Zeros,
        _ => ParameterInit.Normal,
    };
}
