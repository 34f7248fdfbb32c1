namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>jinja2's built-in tests (<c>x is defined</c>, <c>x is string</c>, <c>x is equalto y</c>, ...) with their Python semantics.</summary>
internal static class Tests
{
    private static readonly HashSet<string> Known =
    [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true", "integer", "float",
        "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable", "sameas", "escaped", "in",
        "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", "ge", ">=", "<", "lt", "lessthan", "<=", "le",
    ];

    public static bool Apply(RenderState state, string name, object? v, Args a)
    {
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v is null;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "integer": return v is long or System.Numerics.BigInteger;
            case "float": return v is double;
            case "number": return Py.IsNumber(v);
            case "string": return v is string or Markup;
            case "mapping": return v is PyDict;
            case "escaped": return v is Markup;
            case "iterable": return Py.IsIterable(v) || v is LoopContext;
            case "sequence": return v is string or Markup or PyList or PyDict or PyRange or Undefined;
            case "callable": return v is PyCallable or LoopContext or Joiner or Undefined;
            case "lower": return PyStr.IsLowerOrUpper(Py.Str(v), lower: true);
            case "upper": return PyStr.IsLowerOrUpper(Py.Str(v), lower: false);
            case "odd": return Py.Equal(Py.Mod(v, 2L), 1L);
            case "even": return Py.Equal(Py.Mod(v, 2L), 0L);
            case "filter": return Py.AsString(v) is { } f && Filters.Exists(f);
            case "test": return Py.AsString(v) is { } t && Known.Contains(t);
        }
        if (!Known.Contains(name)) throw new ChatTemplateException($"No test named '{name}'.", ChatTemplateErrorKind.Syntax);
        if (a.Count + (a.Keywords?.Count ?? 0) != 1) throw Py.TypeError($"test '{name}' takes exactly one argument");
        var other = a.Count == 1 ? a.Positional[0] : a.Keywords![0].Value;
        return name switch
        {
            "divisibleby" => Py.Equal(Py.Mod(v, other), 0L),
            "sameas" => SameAs(v, other),
            "in" => Py.Contains(other, v),
            "==" or "eq" or "equalto" => Py.Equal(v, other),
            "!=" or "ne" => !Py.Equal(v, other),
            ">" or "gt" or "greaterthan" => Py.Order(">", v, other),
            ">=" or "ge" => Py.Order(">=", v, other),
            "<" or "lt" or "lessthan" => Py.Order("<", v, other),
            _ => Py.Order("<=", v, other),
        };
    }

    /// <summary>Python's <c>is</c>: None, bools and CPython's cached small ints are singletons; otherwise identity.</summary>
    private static bool SameAs(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (bool x, bool y) => x == y,
        (long x, long y) => x == y && x is >= -5 and <= 256,
        _ => ReferenceEquals(a, b) && a is not (long or double),
    };
}
