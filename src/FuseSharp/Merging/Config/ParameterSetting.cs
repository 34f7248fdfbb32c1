using System.Globalization;

namespace FuseSharp.Merging.Config;

/// <summary>The kinds of value a merge parameter takes.</summary>
public enum ParameterKind
{
    Number,
    Bool,
    String,
}

/// <summary>One evaluated parameter value: a number, a boolean or a string (YAML scalars as mergekit reads them).</summary>
public readonly record struct ParameterScalar
{
    private ParameterScalar(ParameterKind kind, double number, bool flag, string? text)
    {
        Kind = kind;
        NumberValue = number;
        BoolValue = flag;
        Text = text;
    }

    public ParameterKind Kind { get; }

    public double NumberValue { get; }

    public bool BoolValue { get; }

    public string? Text { get; }

    public static ParameterScalar Number(double value) => new(ParameterKind.Number, value, false, null);

    public static ParameterScalar Bool(bool value) => new(ParameterKind.Bool, 0, value, null);

    public static ParameterScalar String(string value) => new(ParameterKind.String, 0, false, value);

    public override string ToString() => Kind switch
    {
        ParameterKind.Number => NumberValue.ToString("R", CultureInfo.InvariantCulture),
        ParameterKind.Bool => BoolValue ? "true" : "false",
        _ => Text ?? "",
    };
}

/// <summary>Where a node of the config came from (for messages).</summary>
public readonly record struct SourceLocation(string? File, int Line)
{
    public override string ToString() => Line > 0 ? $"{File ?? "config"}:{Line}" : File ?? "config";
}

/// <summary>
/// A parameter as written in the config (mergekit's <c>ParameterSetting</c>, spec §1.4): a scalar, a gradient
/// (a list of numbers interpolated over the layer position t), a step list (non-numeric values picked by t), or
/// a list of <c>{filter, value}</c> conditions whose first match (filter missing, <c>"*"</c>, or a plain substring
/// of the tensor name) gives the value. Evaluation returns null when no condition matches, so the lookup falls
/// through to the next level (model, slice, top level, method default).
/// </summary>
public abstract record ParameterSetting(SourceLocation Location)
{
    /// <summary>The value for <paramref name="tensorName"/> at layer position <paramref name="t"/> in [0, 1], or null when not set.</summary>
    public abstract ParameterScalar? Evaluate(string tensorName, double t);

    /// <summary>True when the value may differ between tensors or layers (gradients, steps, filters).</summary>
    public abstract bool VariesByTensor { get; }
}

/// <summary>A single value.</summary>
public sealed record ScalarSetting(ParameterScalar Value, SourceLocation Location) : ParameterSetting(Location)
{
    public override ParameterScalar? Evaluate(string tensorName, double t) => Value;

    public override bool VariesByTensor => false;
}

/// <summary>
/// A gradient <c>[g0, ..., g(n-1)]</c>: at t, <c>s = t(n-1)</c>, <c>i0 = floor(s)</c>, <c>i1 = min(n-1, i0+1)</c>,
/// <c>f = s - i0</c>, value <c>(1-f)g[i0] + f g[i1]</c> (mergekit <c>evaluate_setting</c>).
/// </summary>
public sealed record GradientSetting(IReadOnlyList<double> Values, SourceLocation Location) : ParameterSetting(Location)
{
    public override ParameterScalar? Evaluate(string tensorName, double t) => ParameterScalar.Number(At(Values, t));

    public override bool VariesByTensor => Values.Count > 1;

    /// <summary>The gradient's value at <paramref name="t"/>.</summary>
    public static double At(IReadOnlyList<double> g, double t)
    {
        if (g.Count == 0) throw new ArgumentException("empty gradient", nameof(g));
        double s = t * (g.Count - 1);
        // int() truncates toward zero as Python does; t is in [0, 1] so this is floor.
        int i0 = (int)s;
        i0 = Math.Clamp(i0, 0, g.Count - 1);
        int i1 = Math.Min(g.Count - 1, i0 + 1);
        double f = s - i0;
        return (1 - f) * g[i0] + f * g[i1];
    }
}

/// <summary>A list of non-numeric values: at t the entry <c>int(t (n-1))</c> is taken.</summary>
public sealed record StepSetting(IReadOnlyList<ParameterScalar> Values, SourceLocation Location) : ParameterSetting(Location)
{
    public override ParameterScalar? Evaluate(string tensorName, double t) =>
        Values[Math.Clamp((int)(t * (Values.Count - 1)), 0, Values.Count - 1)];

    public override bool VariesByTensor => Values.Count > 1;
}

/// <summary>One <c>{filter, value}</c> entry of a conditional list.</summary>
public sealed record ParameterCondition(string? Filter, ParameterSetting Value, SourceLocation Location)
{
    /// <summary>mergekit's rule: no filter, <c>"*"</c>, or a plain (case-sensitive) substring of the tensor name.</summary>
    public bool Matches(string tensorName) =>
        Filter is null || Filter == "*" || (tensorName.Length > 0 && tensorName.Contains(Filter, StringComparison.Ordinal));
}

/// <summary>Conditions evaluated in order; the first match wins, none gives null.</summary>
public sealed record ConditionalSetting(IReadOnlyList<ParameterCondition> Conditions, SourceLocation Location) : ParameterSetting(Location)
{
    public override ParameterScalar? Evaluate(string tensorName, double t)
    {
        foreach (var c in Conditions)
            if (c.Matches(tensorName)) return c.Value.Evaluate(tensorName, t);
        return null;
    }

    public override bool VariesByTensor => true;
}

/// <summary>Parameters at one level of the config (top level, slice, or one model), by name, in file order.</summary>
public sealed class ParameterSet
{
    public static readonly ParameterSet Empty = new([]);

    private readonly List<KeyValuePair<string, ParameterSetting>> _items;

    public ParameterSet(IEnumerable<KeyValuePair<string, ParameterSetting>> items) => _items = items.ToList();

    public IReadOnlyList<KeyValuePair<string, ParameterSetting>> Items => _items;

    public int Count => _items.Count;

    public bool TryGet(string name, out ParameterSetting setting)
    {
        foreach (var (k, v) in _items)
        {
            if (k == name)
            {
                setting = v;
                return true;
            }
        }
        setting = null!;
        return false;
    }

    /// <summary>A copy with <paramref name="name"/> set (replacing an existing entry).</summary>
    public ParameterSet With(string name, ParameterSetting setting) =>
        new(_items.Where(p => p.Key != name).Append(new(name, setting)));
}
