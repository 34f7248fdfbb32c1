using System.Globalization;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>What a method does with <c>base_model</c>.</summary>
public enum BaseModelPolicy
{
    /// <summary>The base is the reference the others are compared with (task vectors, SLERP's t = 0 end); it must be given.</summary>
    Required,

    /// <summary>With a base the method works on task vectors; without one, on the raw weights (NuSLERP, Multi-SLERP).</summary>
    Optional,

    /// <summary>The method has no base role; a <c>base_model</c> is merged as one more input (linear, Karcher, passthrough).</summary>
    Input,
}

/// <summary>How embedding matrices (embed_tokens, lm_head, ...) of different sizes are brought to one shape (spec §1.3).</summary>
public enum EmbeddingShapePolicy
{
    /// <summary>Every input is cut to the largest common sub-matrix <c>[:min_rows, :min_cols]</c> (mergekit <c>rectify_embed_sizes</c>).</summary>
    CommonSubmatrix,

    /// <summary>Every input is cut to the base's shape <c>[:base_rows, :base_cols]</c> (mergekit <c>get_task_vectors</c>); a smaller input is an error.</summary>
    CutToBase,

    /// <summary>Every input is padded to the largest row count with rows equal to its own mean row (MergeLLM WIDEN, spec §2.14.6).</summary>
    PadToLargestWithMean,
}

/// <summary>
/// A parameter a method accepts: its name, kind, default (null = no default), whether it is required, allowed
/// values for strings, and an optional range check that returns a problem description or null.
/// </summary>
public sealed record ParameterDef(string Name, ParameterKind Kind, ParameterScalar? Default, string Description,
    bool Required = false, IReadOnlyList<string>? Choices = null, Func<double, string?>? Check = null)
{
    public static ParameterDef Number(string name, double @default, string description, Func<double, string?>? check = null) =>
        new(name, ParameterKind.Number, ParameterScalar.Number(@default), description, Check: check);

    public static ParameterDef RequiredNumber(string name, string description, Func<double, string?>? check = null) =>
        new(name, ParameterKind.Number, null, description, Required: true, Check: check);

    /// <summary>A number without a default that may stay unset (e.g. optional overrides).</summary>
    public static ParameterDef OptionalNumber(string name, string description, Func<double, string?>? check = null) =>
        new(name, ParameterKind.Number, null, description, Check: check);

    public static ParameterDef Bool(string name, bool @default, string description) =>
        new(name, ParameterKind.Bool, ParameterScalar.Bool(@default), description);

    public static ParameterDef Choice(string name, string @default, IReadOnlyList<string> choices, string description) =>
        new(name, ParameterKind.String, ParameterScalar.String(@default), description, Choices: choices);

    public static ParameterDef OptionalString(string name, string description) =>
        new(name, ParameterKind.String, null, description);

    /// <summary>The default as text for docs and --dry-run.</summary>
    public string DefaultText => Required ? "required" : Default?.ToString() ?? "unset";

    /// <summary>Range checks shared by the methods.</summary>
    public static string? InUnitIntervalOpenClosed(double v) => v is > 0 and <= 1 ? null : "must be in (0, 1]";

    public static string? NonNegative(double v) => v >= 0 ? null : "must be >= 0";

    public static string? Positive(double v) => v > 0 ? null : "must be > 0";

    public static string? InUnitInterval(double v) => v is >= 0 and <= 1 ? null : "must be in [0, 1]";

    public static string? PositiveInteger(double v) => v >= 1 && v == Math.Floor(v) ? null : "must be a whole number >= 1";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Kind}, {DefaultText})");
}

/// <summary>
/// A merge method: how one output tensor is computed from the matching input tensors. One implementation per
/// file in <c>Merging/Methods/</c>, one line in <see cref="MergeMethodRegistry"/> per registered name; families
/// (TIES, DARE, DELLA, breadcrumbs) are one implementation configured differently.
/// The planner resolves every declared parameter for every tensor and calls <see cref="Validate"/> before any
/// weight is read; the executor then calls <see cref="Merge"/> once per tensor, possibly from several threads
/// for different tensors, so implementations keep no per-tensor state in fields.
/// </summary>
public interface IMergeMethod
{
    /// <summary>The name used in <c>merge_method:</c>.</summary>
    string Name { get; }

    /// <summary>The name for people (model cards, reports).</summary>
    string PrettyName { get; }

    /// <summary>The paper or reference implementation.</summary>
    string? Reference { get; }

    BaseModelPolicy BasePolicy { get; }

    EmbeddingShapePolicy EmbeddingPolicy { get; }

    /// <summary>Global parameters (one value per output tensor, filtered on the output tensor name).</summary>
    IReadOnlyList<ParameterDef> Parameters { get; }

    /// <summary>Per-model ("tensor") parameters, filtered on each model's input tensor name.</summary>
    IReadOnlyList<ParameterDef> ModelParameters { get; }

    /// <summary>
    /// Checks a planned tensor before any weight is read: model counts, parameter combinations.
    /// Throws <see cref="MergeException"/> with a precise message.
    /// </summary>
    void Validate(TensorTask task);

    /// <summary>Bytes of memory the method allocates for this tensor beyond the executor's per-thread chunk buffers (for the memory plan).</summary>
    long WorkspaceBytes(TensorTask task);

    /// <summary>Computes the output tensor, writing every element to <see cref="TensorMergeContext.Output"/> exactly once.</summary>
    void Merge(TensorMergeContext context);
}
