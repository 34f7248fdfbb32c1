using FuseSharp.Merging.Config;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Planning;

/// <summary>Resolved parameter values for one tensor (global) or one model on one tensor (per model), defaults filled in.</summary>
public sealed class ParameterValues
{
    public static readonly ParameterValues Empty = new(new Dictionary<string, ParameterScalar>());

    private readonly IReadOnlyDictionary<string, ParameterScalar> _values;

    public ParameterValues(IReadOnlyDictionary<string, ParameterScalar> values) => _values = values;

    public IReadOnlyDictionary<string, ParameterScalar> Values => _values;

    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>A number parameter (declared with a default or required, so always present).</summary>
    public double Number(string name) => OptionalNumber(name) ?? throw new InvalidOperationException($"parameter '{name}' was not resolved");

    public double? OptionalNumber(string name) => _values.TryGetValue(name, out var v) ? v.NumberValue : null;

    public bool Bool(string name) => _values.TryGetValue(name, out var v) ? v.BoolValue : throw new InvalidOperationException($"parameter '{name}' was not resolved");

    public string String(string name) => OptionalString(name) ?? throw new InvalidOperationException($"parameter '{name}' was not resolved");

    public string? OptionalString(string name) => _values.TryGetValue(name, out var v) ? v.Text : null;

    public override string ToString() => string.Join(", ", _values.Select(p => $"{p.Key}={p.Value}"));
}

/// <summary>One input of a planned tensor: which model, which of its tensors (after renumbering, aliases, ties), its view and parameters.</summary>
public sealed record TaskInput(int ModelIndex, string ModelName, string TensorName, TensorSource Source, ParameterValues Parameters)
{
    /// <summary>The per-model <c>weight</c> (methods that declare it).</summary>
    public double Weight => Parameters.Number("weight");
}

/// <summary>Where an output tensor sits in the model (for gradients' t and slice donors).</summary>
public enum TensorRole
{
    /// <summary>Before the layers: embeddings (taken from the first slice's sources, t = 0).</summary>
    Pre,

    /// <summary>Inside a layer.</summary>
    Layer,

    /// <summary>After the layers: final norm, LM head (taken from the last slice's sources, t = 0).</summary>
    Post,
}

/// <summary>
/// One output tensor of a merge, fully resolved before any weight is read: its name, shape and dtype, the
/// inputs (non-base models in config order), the base (null for methods without a base role), and every
/// parameter value.
/// </summary>
public sealed record TensorTask
{
    public required string Name { get; init; }

    public required Shape Shape { get; init; }

    /// <summary>The dtype written.</summary>
    public required DType OutputDType { get; init; }

    /// <summary>Non-base inputs, in config order (for <see cref="Methods.BaseModelPolicy.Input"/> the base is among them).</summary>
    public required IReadOnlyList<TaskInput> Inputs { get; init; }

    public TaskInput? Base { get; init; }

    public required ParameterValues Parameters { get; init; }

    public TensorRole Role { get; init; }

    /// <summary>Output layer index for <see cref="TensorRole.Layer"/>, else -1.</summary>
    public int Layer { get; init; } = -1;

    /// <summary>Gradient position t this tensor was resolved at.</summary>
    public double T { get; init; }

    /// <summary>An embedding or LM-head matrix (rows are tokens).</summary>
    public bool IsEmbedding { get; init; }

    /// <summary>An input embedding (rows are tokens and the model looks them up; WIDEN transposes these).</summary>
    public bool IsInputEmbedding { get; init; }

    /// <summary>True for integer/bool tensors, which are copied (from the base, else the first input) instead of merged.</summary>
    public bool CopyOnly { get; init; }

    /// <summary>Notes from planning (embedding cuts, tied-weight substitutions), shown in the report.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public long Count => Shape.ElementCount;

    /// <summary>Base (when present) followed by the inputs.</summary>
    public IEnumerable<TaskInput> AllInputs => Base is null ? Inputs : Inputs.Prepend(Base);

    public long OutputBytes => Count * OutputDType.Size();
}
