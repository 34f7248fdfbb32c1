using FuseSharp.Tensors;

namespace FuseSharp.Merging.Config;

/// <summary>A model as the config names it: a local path, a Hugging Face id (<c>org/name</c>) or <c>path@revision</c>.</summary>
public sealed record ModelReference(string Text, SourceLocation Location)
{
    /// <summary>The part before <c>@revision</c> (the revision only selects a cached snapshot).</summary>
    public string Path => SplitRevision().Path;

    public string? Revision => SplitRevision().Revision;

    /// <summary>Two references to the same model compare equal whatever their location.</summary>
    public bool SameModel(ModelReference other) => string.Equals(Normalize(Text), Normalize(other.Text), StringComparison.Ordinal);

    public override string ToString() => Text;

    private (string Path, string? Revision) SplitRevision()
    {
        int at = Text.LastIndexOf('@');
        if (at <= 0 || Text.IndexOf('/', at) >= 0) return (Text, null);
        return (Text[..at], Text[(at + 1)..]);
    }

    private static string Normalize(string s) => s.Trim().TrimEnd('/', '\\');
}

/// <summary>One entry of <c>models:</c>.</summary>
public sealed record InputModelDefinition(ModelReference Model, ParameterSet Parameters, SourceLocation Location);

/// <summary>One source of a slice: a model and the half-open layer range [Start, End) it contributes.</summary>
public sealed record SliceSourceDefinition(ModelReference Model, int LayerStart, int LayerEnd, ParameterSet Parameters, SourceLocation Location)
{
    public int LayerCount => LayerEnd - LayerStart;
}

/// <summary>One entry of <c>slices:</c>: sources merged layer by layer, an optional slice base model and parameters.</summary>
public sealed record OutputSliceDefinition(IReadOnlyList<SliceSourceDefinition> Sources, ModelReference? BaseModel, ParameterSet Parameters,
    double? ResidualWeight, SourceLocation Location);

/// <summary>Where an embedding row for a token comes from when building a tokenizer (mergekit <c>tokens:</c>).</summary>
public abstract record TokenEmbeddingSource;

/// <summary>The row of the same token in a given model.</summary>
public sealed record ModelEmbeddingSource(ModelReference Model) : TokenEmbeddingSource;

/// <summary>The row of another token (by text or id) in a given model.</summary>
public sealed record ModelTokenEmbeddingSource(ModelReference Model, string? Token, int? TokenId) : TokenEmbeddingSource;

/// <summary>An all-zero row.</summary>
public sealed record ZeroEmbeddingSource : TokenEmbeddingSource;

/// <summary>Per-token embedding settings: a source, and <c>force</c> to use it even in models that have the token.</summary>
public sealed record TokenEmbeddingSettings(TokenEmbeddingSource? Source, bool Force, SourceLocation Location);

/// <summary>
/// The output tokenizer: <c>tokenizer_source</c> (legacy form) or <c>tokenizer: {source, tokens, pad_to_multiple_of}</c>.
/// <see cref="Source"/> is <c>"union"</c>, <c>"base"</c> or a model reference.
/// </summary>
public sealed record TokenizerDefinition(string Source, ModelReference? SourceModel, IReadOnlyDictionary<string, TokenEmbeddingSettings> Tokens,
    int? PadToMultipleOf, SourceLocation Location)
{
    public bool IsUnion => Source == "union";

    public bool IsBase => Source == "base";
}

/// <summary>
/// A mergekit-compatible merge configuration (mergekit <c>MergeConfiguration</c>, spec §4.1), parsed and
/// schema-checked. Exactly one of <see cref="Models"/> and <see cref="Slices"/> is set.
/// </summary>
public sealed record MergeConfiguration
{
    public required string MergeMethod { get; init; }

    public SourceLocation MergeMethodLocation { get; init; }

    public ModelReference? BaseModel { get; init; }

    public IReadOnlyList<InputModelDefinition>? Models { get; init; }

    public IReadOnlyList<OutputSliceDefinition>? Slices { get; init; }

    public ParameterSet Parameters { get; init; } = ParameterSet.Empty;

    /// <summary><c>dtype</c>: mergekit's compute dtype. FuseSharp always computes in FP32; this sets the output dtype unless <see cref="OutDType"/> is given.</summary>
    public DType? DType { get; init; }

    public DType? OutDType { get; init; }

    public TokenizerDefinition? Tokenizer { get; init; }

    /// <summary><c>chat_template</c>: a built-in name (auto, alpaca, chatml, llama3, mistral, exaone) or a Jinja template.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary><c>name</c> (used by mergekit-multi documents); informational here.</summary>
    public string? Name { get; init; }

    /// <summary>The YAML text as given (written into the output as <c>fusesharp_config.yml</c> and the model card).</summary>
    public string SourceText { get; init; } = "";

    /// <summary>The file the config came from, or null.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Every model the config references, in first-mention order (base model first when given).</summary>
    public IReadOnlyList<ModelReference> ReferencedModels()
    {
        var list = new List<ModelReference>();
        void Add(ModelReference? m)
        {
            if (m is not null && !list.Any(x => x.SameModel(m))) list.Add(m);
        }
        Add(BaseModel);
        foreach (var m in Models ?? []) Add(m.Model);
        foreach (var s in Slices ?? [])
        {
            Add(s.BaseModel);
            foreach (var src in s.Sources) Add(src.Model);
        }
        return list;
    }
}
