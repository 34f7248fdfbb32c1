namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>An expression node of the template AST; evaluates to an interpreter value (see <see cref="Py"/>).</summary>
internal abstract class Expr(int line)
{
    public int Line { get; } = line;

    public abstract object? Eval(RenderState state, Frame frame);

    /// <summary>Sub-expressions in evaluation order (for the scope analysis in <see cref="Scopes"/>).</summary>
    public virtual IEnumerable<Expr> Children => [];
}

internal sealed class ConstExpr(int line, object? value) : Expr(line)
{
    public object? Value { get; } = value;

    public override object? Eval(RenderState state, Frame frame) => Value;
}

internal sealed class NameExpr(int line, string name) : Expr(line)
{
    public string Name { get; } = name;

    public override object? Eval(RenderState state, Frame frame) =>
        frame.TryGet(Name, out var v) ? v : Globals.TryGet(Name, out v) ? v : Undefined.Named(Name);
}

internal sealed class ListExpr(int line, List<Expr> items, bool isTuple) : Expr(line)
{
    public List<Expr> Items { get; } = items;

    public bool IsTuple { get; } = isTuple;

    public override IEnumerable<Expr> Children => Items;

    public override object? Eval(RenderState state, Frame frame)
    {
        var values = new List<object?>(Items.Count);
        foreach (var e in Items) values.Add(e.Eval(state, frame));
        return new PyList(values, IsTuple);
    }
}

internal sealed class DictExpr(int line, List<(Expr Key, Expr Value)> pairs) : Expr(line)
{
    public override IEnumerable<Expr> Children => pairs.SelectMany(p => new[] { p.Key, p.Value });

    public override object? Eval(RenderState state, Frame frame)
    {
        var d = new PyDict(pairs.Count);
        foreach (var (k, v) in pairs) d.Set(k.Eval(state, frame), v.Eval(state, frame));
        return d;
    }
}

internal sealed class GetAttrExpr(int line, Expr obj, string name) : Expr(line)
{
    public Expr Obj { get; } = obj;

    public string Name { get; } = name;

    public override IEnumerable<Expr> Children => [Obj];

    public override object? Eval(RenderState state, Frame frame) => Py.GetAttr(Obj.Eval(state, frame), Name);
}

internal sealed class GetItemExpr(int line, Expr obj, Expr key) : Expr(line)
{
    public override IEnumerable<Expr> Children => [obj, key];

    public override object? Eval(RenderState state, Frame frame) => Py.GetItem(obj.Eval(state, frame), key.Eval(state, frame));
}

internal sealed class SliceExpr(int line, Expr obj, Expr? start, Expr? stop, Expr? step) : Expr(line)
{
    public override IEnumerable<Expr> Children => new[] { obj, start, stop, step }.OfType<Expr>();

    public override object? Eval(RenderState state, Frame frame) =>
        Py.Slice(obj.Eval(state, frame), start?.Eval(state, frame), stop?.Eval(state, frame), step?.Eval(state, frame));
}

/// <summary>Arguments as written at a call site: positional, keyword, <c>*args</c> and <c>**kwargs</c>.</summary>
internal sealed class CallArgs(List<Expr> positional, List<(string Name, Expr Value)> keywords, Expr? dynArgs, Expr? dynKwargs)
{
    public static readonly CallArgs Empty = new([], [], null, null);

    public int PositionalCount => positional.Count;

    public IEnumerable<Expr> Children =>
        positional.Concat(keywords.Select(k => k.Value)).Concat(new[] { dynArgs, dynKwargs }.OfType<Expr>());

    public Args Eval(RenderState state, Frame frame)
    {
        if (positional.Count == 0 && keywords.Count == 0 && dynArgs is null && dynKwargs is null) return Args.None;
        var pos = new List<object?>(positional.Count);
        foreach (var e in positional) pos.Add(e.Eval(state, frame));
        if (dynArgs is not null) pos.AddRange(Py.Iterate(dynArgs.Eval(state, frame)));
        List<KeyValuePair<string, object?>>? kw = null;
        if (keywords.Count > 0 || dynKwargs is not null)
        {
            kw = new List<KeyValuePair<string, object?>>(keywords.Count);
            foreach (var (n, e) in keywords) kw.Add(new(n, e.Eval(state, frame)));
            if (dynKwargs is not null)
            {
                if (dynKwargs.Eval(state, frame) is not PyDict d) throw Py.TypeError("argument after ** must be a mapping");
                foreach (var (k, v) in d.Items) kw.Add(new(Py.AsString(k) ?? throw Py.TypeError("keywords must be strings"), v));
            }
        }
        return new Args(pos, kw);
    }
}

internal sealed class CallExpr(int line, Expr callee, CallArgs args) : Expr(line)
{
    public Expr Callee { get; } = callee;

    public CallArgs Arguments { get; } = args;

    public override IEnumerable<Expr> Children => [Callee, .. Arguments.Children];

    public override object? Eval(RenderState state, Frame frame)
    {
        try
        {
            // obj.method(...) on a str/dict/list calls the method directly instead of building a bound method first.
            if (Callee is GetAttrExpr ga)
            {
                var self = ga.Obj.Eval(state, frame);
                var fn = Py.GetAttr(self, ga.Name);
                return fn is BoundMethod bm ? Methods.Call(state, bm.Self, bm.Name, Arguments.Eval(state, frame)) : Py.Call(state, fn, Arguments.Eval(state, frame));
            }
            return Py.Call(state, Callee.Eval(state, frame), Arguments.Eval(state, frame));
        }
        catch (ChatTemplateException e) when (e.StampLine(Line))
        {
            throw; // not reached: the filter only stamps the line
        }
    }
}

/// <summary><c>value | name(args)</c>; <see cref="Value"/> is null for a filter block's filter, applied to the block text.</summary>
internal sealed class FilterExpr(int line, Expr? value, string name, CallArgs args) : Expr(line)
{
    public Expr? Value { get; } = value;

    public string Name { get; } = name;

    public override IEnumerable<Expr> Children => Value is null ? args.Children : [Value, .. args.Children];

    public object? Apply(RenderState state, Frame frame, object? input)
    {
        try
        {
            return Filters.Apply(state, Name, input, args.Eval(state, frame));
        }
        catch (ChatTemplateException e) when (e.StampLine(Line))
        {
            throw; // not reached: the filter only stamps the line
        }
    }

    public override object? Eval(RenderState state, Frame frame) => Apply(state, frame, Value!.Eval(state, frame));
}

internal sealed class TestExpr(int line, Expr value, string name, CallArgs args) : Expr(line)
{
    public override IEnumerable<Expr> Children => [value, .. args.Children];

    public override object? Eval(RenderState state, Frame frame)
    {
        var v = value.Eval(state, frame);
        try
        {
            return Py.Bool(Tests.Apply(state, name, v, args.Eval(state, frame)));
        }
        catch (ChatTemplateException e) when (e.StampLine(Line))
        {
            throw; // not reached: the filter only stamps the line
        }
    }
}

internal sealed class NotExpr(int line, Expr operand) : Expr(line)
{
    public override IEnumerable<Expr> Children => [operand];

    public override object? Eval(RenderState state, Frame frame) => Py.Bool(!Py.Truthy(operand.Eval(state, frame)));
}

internal sealed class NegExpr(int line, Expr operand, bool negate) : Expr(line)
{
    public override IEnumerable<Expr> Children => [operand];

    public override object? Eval(RenderState state, Frame frame) => negate ? Py.Neg(operand.Eval(state, frame)) : Py.Pos(operand.Eval(state, frame));
}

internal sealed class BinaryExpr(int line, string op, Expr left, Expr right) : Expr(line)
{
    public override IEnumerable<Expr> Children => [left, right];

    public override object? Eval(RenderState state, Frame frame)
    {
        var a = left.Eval(state, frame);
        var b = right.Eval(state, frame);
        return op switch
        {
            "+" => Py.Add(a, b),
            "-" => Py.Sub(a, b),
            "*" => Py.Mul(a, b),
            "/" => Py.Div(a, b),
            "//" => Py.FloorDiv(a, b),
            "%" => Py.Mod(a, b),
            _ => Py.Pow(a, b),
        };
    }
}

/// <summary><c>and</c> / <c>or</c>: short-circuit and return an operand, as Python does.</summary>
internal sealed class LogicalExpr(int line, bool isAnd, Expr left, Expr right) : Expr(line)
{
    public override IEnumerable<Expr> Children => [left, right];

    public override object? Eval(RenderState state, Frame frame)
    {
        var a = left.Eval(state, frame);
        return Py.Truthy(a) == isAnd ? right.Eval(state, frame) : a;
    }
}

/// <summary><c>a ~ b ~ c</c>: the str() of every operand joined.</summary>
internal sealed class ConcatExpr(int line, List<Expr> items) : Expr(line)
{
    public override IEnumerable<Expr> Children => items;

    public override object? Eval(RenderState state, Frame frame)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var e in items) sb.Append(Py.Str(e.Eval(state, frame)));
        return sb.ToString();
    }
}

/// <summary>A comparison chain <c>a &lt; b &lt;= c</c>, <c>in</c>, <c>not in</c>, <c>==</c>, <c>!=</c>.</summary>
internal sealed class CompareExpr(int line, Expr first, List<(string Op, Expr Operand)> ops) : Expr(line)
{
    public override IEnumerable<Expr> Children => [first, .. ops.Select(o => o.Operand)];

    public override object? Eval(RenderState state, Frame frame)
    {
        var left = first.Eval(state, frame);
        foreach (var (op, operand) in ops)
        {
            var right = operand.Eval(state, frame);
            bool ok = op switch
            {
                "==" => Py.Equal(left, right),
                "!=" => !Py.Equal(left, right),
                "in" => Py.Contains(right, left),
                "notin" => !Py.Contains(right, left),
                _ => Py.Order(op, left, right),
            };
            if (!ok) return Py.False;
            left = right;
        }
        return Py.True;
    }
}

/// <summary><c>a if cond else b</c>; without <c>else</c> a false condition gives Undefined.</summary>
internal sealed class CondExpr(int line, Expr test, Expr then, Expr? otherwise) : Expr(line)
{
    public override IEnumerable<Expr> Children => new[] { test, then, otherwise }.OfType<Expr>();

    public override object? Eval(RenderState state, Frame frame)
    {
        if (Py.Truthy(test.Eval(state, frame))) return then.Eval(state, frame);
        return otherwise is null
            ? Undefined.WithHint($"the inline if-expression on line {Line} evaluated to false and no else section was defined.")
            : otherwise.Eval(state, frame);
    }
}
