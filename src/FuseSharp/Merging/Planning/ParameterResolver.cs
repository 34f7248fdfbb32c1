using System.Globalization;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Methods;

namespace FuseSharp.Merging.Planning;

/// <summary>
/// Resolves a method's parameters for one tensor (mergekit <c>ConfigReader.parameter</c>, spec §1.4). Per-model
/// parameters are looked up in the model's own parameters, then the slice's, then the top level, each filtered on
/// that model's input tensor name; global parameters in the slice's, then the top level, filtered on the output
/// tensor name. Gradients are evaluated at the tensor's t. A missing required value, a value of the wrong kind or
/// out of range is a <see cref="MergeConfigException"/> naming the line it came from.
/// </summary>
public sealed class ParameterResolver(IMergeMethod method, MergeConfiguration config)
{
    /// <summary>Global parameters for an output tensor of <paramref name="slice"/>.</summary>
    public ParameterValues Global(OutputSliceDefinition slice, string outputTensor, double t) =>
        Resolve(method.Parameters, outputTensor, t, null, [slice.Parameters, config.Parameters],
            def => $"missing required parameter '{def.Name}' of {method.Name} for tensor '{outputTensor}'",
            def => $"set it under the top-level 'parameters' (e.g. '{def.Name}: ...'; {def.Description})");

    /// <summary>Per-model parameters of one source for its input tensor.</summary>
    /// <param name="slice">The output slice.</param>
    /// <param name="modelParameters">The model's own parameters (its <c>models</c> entry or slice source).</param>
    /// <param name="modelName">For messages.</param>
    /// <param name="inputTensor">The model's tensor name (filters match it).</param>
    /// <param name="t">Layer position for gradients.</param>
    /// <param name="overrides">Values computed before planning (LM-Cocktail weights from data), taking precedence.</param>
    public ParameterValues PerModel(OutputSliceDefinition slice, ParameterSet modelParameters, string modelName, string inputTensor, double t,
        IReadOnlyDictionary<string, double>? overrides) =>
        Resolve(method.ModelParameters, inputTensor, t, overrides, [modelParameters, slice.Parameters, config.Parameters],
            def => $"missing required parameter '{def.Name}' for model '{modelName}' (tensor '{inputTensor}')",
            def => $"give the model a '{def.Name}' under its parameters ({def.Description}), or set one for all models at the top level");

    private ParameterValues Resolve(IReadOnlyList<ParameterDef> defs, string tensor, double t, IReadOnlyDictionary<string, double>? overrides,
        ParameterSet[] levels, Func<ParameterDef, string> missing, Func<ParameterDef, string> hint)
    {
        var values = new Dictionary<string, ParameterScalar>(StringComparer.Ordinal);
        foreach (var def in defs)
        {
            if (overrides is not null && overrides.TryGetValue(def.Name, out var o)) values[def.Name] = ParameterScalar.Number(o);
            else if (Lookup(def, tensor, t, levels) is { } v) values[def.Name] = v;
            else if (def.Default is { } d) values[def.Name] = d;
            else if (def.Required) throw new MergeConfigException(config.SourcePath, 0, missing(def), hint(def));
        }
        return new ParameterValues(values);
    }

    private ParameterScalar? Lookup(ParameterDef def, string tensor, double t, ParameterSet[] levels)
    {
        foreach (var level in levels)
        {
            if (!level.TryGet(def.Name, out var setting)) continue;
            if (setting.Evaluate(tensor, t) is not { } raw) continue;
            return Convert(def, raw, setting.Location, tensor);
        }
        return null;
    }

    private ParameterScalar Convert(ParameterDef def, ParameterScalar raw, SourceLocation where, string tensor)
    {
        ParameterScalar value;
        switch (def.Kind)
        {
            case ParameterKind.Number:
                if (raw.Kind == ParameterKind.Number) value = raw;
                else if (raw.Kind == ParameterKind.String && double.TryParse(raw.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) value = ParameterScalar.Number(d);
                else throw Bad(where, $"parameter '{def.Name}' must be a number, got '{raw}'", def);
                if (!double.IsFinite(value.NumberValue)) throw Bad(where, $"parameter '{def.Name}' must be finite, got {raw}", def);
                if (def.Check?.Invoke(value.NumberValue) is { } problem)
                    throw Bad(where, $"parameter '{def.Name}' = {value} {problem} (tensor '{tensor}')", def);
                break;
            case ParameterKind.Bool:
                value = raw.Kind switch
                {
                    ParameterKind.Bool => raw,
                    ParameterKind.Number when raw.NumberValue is 0 or 1 => ParameterScalar.Bool(raw.NumberValue == 1),
                    ParameterKind.String when bool.TryParse(raw.Text, out var b) => ParameterScalar.Bool(b),
                    _ => throw Bad(where, $"parameter '{def.Name}' must be true or false, got '{raw}'", def),
                };
                break;
            default:
                value = ParameterScalar.String(raw.ToString());
                if (def.Choices is { } choices && !choices.Contains(value.Text!))
                    throw Bad(where, $"parameter '{def.Name}' must be one of {string.Join(", ", choices)}, got '{raw}'", def);
                break;
        }
        return value;
    }

    private static MergeConfigException Bad(SourceLocation where, string problem, ParameterDef def) =>
        new(where.File, where.Line, problem, def.Description);

    /// <summary>
    /// Checks every parameter name in the config against the method: unknown names (typos) are errors; names other
    /// methods use, or global parameters set per model (which mergekit ignores), are returned as warnings.
    /// </summary>
    public IReadOnlyList<string> CheckNames()
    {
        var warnings = new List<string>();
        var global = method.Parameters.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var perModel = method.ModelParameters.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        void Check(ParameterSet set, bool modelLevel)
        {
            foreach (var (name, setting) in set.Items)
            {
                if (perModel.Contains(name)) continue;
                if (global.Contains(name))
                {
                    if (modelLevel) warnings.Add($"{setting.Location}: '{name}' is a global parameter of {method.Name}; set per model it is ignored (as in mergekit)");
                    continue;
                }
                if (MergeMethodRegistry.AllParameterNames.Contains(name))
                {
                    warnings.Add($"{setting.Location}: parameter '{name}' is not used by {method.Name}; ignored");
                    continue;
                }
                var known = global.Concat(perModel).ToList();
                var close = known.Count == 0 ? null : known.MinBy(k => MergeConfigParser.Distance(k, name));
                throw new MergeConfigException(setting.Location.File, setting.Location.Line, $"unknown parameter '{name}' for {method.Name}",
                    close is not null && MergeConfigParser.Distance(close, name) <= Math.Max(2, name.Length / 3)
                        ? $"did you mean '{close}'?"
                        : known.Count == 0 ? $"{method.Name} takes no parameters" : $"{method.Name} takes: {string.Join(", ", known)}");
            }
        }
        Check(config.Parameters, false);
        foreach (var m in config.Models ?? []) Check(m.Parameters, true);
        foreach (var s in config.Slices ?? [])
        {
            Check(s.Parameters, false);
            foreach (var src in s.Sources) Check(src.Parameters, true);
        }
        return warnings;
    }
}
