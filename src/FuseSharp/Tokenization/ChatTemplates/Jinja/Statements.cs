namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>A statement node of the template AST; executing it writes to <see cref="RenderState.Out"/>.</summary>
internal abstract class Stmt(int line)
{
    public int Line { get; } = line;

    public abstract Flow Exec(RenderState state, Frame frame);

    /// <summary>What this statement reads and assigns in the frame it runs in (jinja2's FrameSymbolVisitor).</summary>
    public virtual void Declare(Symbols frame)
    {
    }

    /// <summary>Analyzes the frames this statement opens, once its enclosing frame is fully known.</summary>
    public virtual void AnalyzeFrames(Symbols frame)
    {
    }

    /// <summary>Runs statements in order, stopping at <c>break</c>/<c>continue</c>; errors get the failing statement's line.</summary>
    public static Flow RunBody(List<Stmt> body, RenderState state, Frame frame)
    {
        foreach (var stmt in body)
        {
            Flow flow;
            try
            {
                flow = stmt.Exec(state, frame);
            }
            catch (ChatTemplateException e) when (e.StampLine(stmt.Line))
            {
                throw; // not reached
            }
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }
}

/// <summary>Template text and <c>{{ expressions }}</c>.</summary>
internal sealed class OutputStmt(int line, List<object> items) : Stmt(line)
{
    /// <summary>Each item is template text (string) or an <see cref="Expr"/>.</summary>
    public List<object> Items { get; } = items;

    public override void Declare(Symbols frame)
    {
        foreach (var item in Items) Scopes.Loads(item as Expr, frame);
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        var output = state.Out;
        foreach (var item in Items)
        {
            if (item is string text)
            {
                output.Append(text);
                continue;
            }
            var expr = (Expr)item;
            try
            {
                output.Append(Py.Str(expr.Eval(state, frame)));
            }
            catch (ChatTemplateException e) when (e.StampLine(expr.Line))
            {
                throw; // not reached
            }
        }
        return Flow.Normal;
    }
}

internal sealed class IfStmt(int line, List<(Expr Test, List<Stmt> Body)> branches, List<Stmt> otherwise) : Stmt(line)
{
    /// <summary>jinja2 visits the test, then each branch in a copy of the frame's symbols (elifs share one copy), then merges.</summary>
    public override void Declare(Symbols frame)
    {
        Scopes.Loads(branches[0].Test, frame);
        var body = frame.Copy();
        foreach (var st in branches[0].Body) st.Declare(body);
        var elif = frame.Copy();
        for (int i = 1; i < branches.Count; i++)
        {
            Scopes.Loads(branches[i].Test, elif);
            var inner = elif.Copy();
            foreach (var st in branches[i].Body) st.Declare(inner);
            elif.BranchUpdate([inner, elif.Copy(), elif.Copy()]);
        }
        var other = frame.Copy();
        foreach (var st in otherwise) st.Declare(other);
        frame.BranchUpdate([body, elif, other]);
    }

    public override void AnalyzeFrames(Symbols frame)
    {
        foreach (var st in branches.SelectMany(b => b.Body).Concat(otherwise)) st.AnalyzeFrames(frame);
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        foreach (var (test, body) in branches)
        {
            if (Py.Truthy(test.Eval(state, frame))) return RunBody(body, state, frame);
        }
        return RunBody(otherwise, state, frame);
    }
}

/// <summary><c>{% for target in iter [if filter] [recursive] %}body{% else %}otherwise{% endfor %}</c>.</summary>
internal sealed class ForStmt(int line, Target target, Expr iter, Expr? filter, bool recursive, List<Stmt> body, List<Stmt> otherwise, bool usesLoop) : Stmt(line)
{
    private string[] bodySeeds = [];
    private string[] elseSeeds = [];

    public override void Declare(Symbols frame) => Scopes.Loads(iter, frame);

    public override void AnalyzeFrames(Symbols frame)
    {
        var loopFrame = new Symbols(frame);
        if (usesLoop || recursive) loopFrame.DeclareParameter("loop");
        target.Declare(loopFrame, asParameter: true);
        bodySeeds = Scopes.AnalyzeFrame(body, loopFrame);
        elseSeeds = Scopes.AnalyzeFrame(otherwise, new Symbols(frame));
        if (filter is not null)
        {
            var testFrame = new Symbols(frame);
            target.Declare(testFrame, asParameter: true);
            Scopes.Loads(filter, testFrame);
        }
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        Run(state, frame, iter.Eval(state, frame), 0);
        return Flow.Normal;
    }

    private void Run(RenderState state, Frame frame, object? iterable, int depth0)
    {
        IEnumerable<object?> items = Py.Iterate(iterable);
        long? known = filter is null && iterable is PyList or PyDict or string or PyRange ? Py.Len(iterable) : null;
        if (filter is not null)
        {
            var source = items;
            items = source.Where(item =>
            {
                var scope = new Frame(frame);
                target.Assign(scope, item);
                return Py.Truthy(filter.Eval(state, scope));
            });
        }
        Func<object?, int, string>? recurse = recursive ? (inner, depth) => state.Capture(() =>
        {
            Run(state, frame, inner, depth);
            return Flow.Normal;
        }) : null;
        var loop = new LoopContext(items, known, depth0, recurse);
        bool any = false;
        while (loop.MoveNext(out var item))
        {
            any = true;
            var scope = new Frame(frame, bodySeeds);
            if (usesLoop || recursive) scope.Set("loop", loop);
            target.Assign(scope, item);
            if (RunBody(body, state, scope) == Flow.Break) break;
        }
        if (!any && otherwise.Count > 0) RunBody(otherwise, state, new Frame(frame, elseSeeds));
    }
}

internal sealed class SetStmt(int line, Target target, Expr value) : Stmt(line)
{
    public override void Declare(Symbols frame)
    {
        Scopes.Loads(value, frame);
        target.Declare(frame, asParameter: false);
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        target.Assign(frame, value.Eval(state, frame));
        return Flow.Normal;
    }
}

/// <summary><c>{% set x | filters %}body{% endset %}</c>: captures the body text.</summary>
internal sealed class SetBlockStmt(int line, Target target, FilterExpr? filter, List<Stmt> body) : Stmt(line)
{
    private string[] seeds = [];

    public override void Declare(Symbols frame) => target.Declare(frame, asParameter: false);

    public override void AnalyzeFrames(Symbols frame) => seeds = Scopes.AnalyzeFrame(body, new Symbols(frame));

    public override Flow Exec(RenderState state, Frame frame)
    {
        object? text = state.Capture(() => RunBody(body, state, new Frame(frame, seeds)));
        if (filter is not null) text = ApplyChain(filter, state, frame, text);
        target.Assign(frame, text);
        return Flow.Normal;
    }

    /// <summary>Applies a chain of block filters (<c>| trim | upper</c>, innermost first) to <paramref name="input"/>.</summary>
    public static object? ApplyChain(FilterExpr filter, RenderState state, Frame frame, object? input) =>
        filter.Apply(state, frame, filter.Value is FilterExpr inner ? ApplyChain(inner, state, frame, input) : input);
}

internal sealed class FilterBlockStmt(int line, FilterExpr filter, List<Stmt> body) : Stmt(line)
{
    private string[] seeds = [];

    public override void Declare(Symbols frame) => Scopes.Loads(filter, frame);

    public override void AnalyzeFrames(Symbols frame)
    {
        var inner = new Symbols(frame);
        foreach (var st in body) st.Declare(inner);
        Scopes.Loads(filter, inner);
        seeds = inner.UndefinedNames();
        foreach (var st in body) st.AnalyzeFrames(inner);
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        var text = state.Capture(() => RunBody(body, state, new Frame(frame, seeds)));
        state.Out.Append(Py.Str(SetBlockStmt.ApplyChain(filter, state, frame, text)));
        return Flow.Normal;
    }
}

internal sealed class MacroStmt(int line, string name, string[] parameters, Expr?[] defaults, List<Stmt> body, Macro.Features features) : Stmt(line)
{
    private string[] seeds = [];

    public override void Declare(Symbols frame) => frame.Store(name);

    public override void AnalyzeFrames(Symbols frame) => seeds = AnalyzeMacro(frame, parameters, defaults, body, features);

    /// <summary>A macro (or caller) frame: parameters, defaults, body, then the special names the body uses.</summary>
    public static string[] AnalyzeMacro(Symbols frame, string[] parameters, Expr?[] defaults, List<Stmt> body, Macro.Features features)
    {
        var inner = new Symbols(frame);
        foreach (var p in parameters) inner.DeclareParameter(p);
        foreach (var d in defaults) Scopes.Loads(d, inner);
        foreach (var st in body) st.Declare(inner);
        if ((features & Macro.Features.Caller) != 0) inner.DeclareParameter("caller");
        if ((features & Macro.Features.Kwargs) != 0) inner.DeclareParameter("kwargs");
        if ((features & Macro.Features.Varargs) != 0) inner.DeclareParameter("varargs");
        var seeds = inner.UndefinedNames();
        foreach (var st in body) st.AnalyzeFrames(inner);
        return seeds;
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        frame.Set(name, new Macro(name, parameters, defaults, body, frame, features, seeds));
        return Flow.Normal;
    }
}

/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>: the body becomes the macro's <c>caller</c>.</summary>
internal sealed class CallBlockStmt(int line, CallExpr call, string[] parameters, Expr?[] defaults, List<Stmt> body, Macro.Features features) : Stmt(line)
{
    private string[] seeds = [];

    public override void Declare(Symbols frame) => Scopes.Loads(call, frame);

    public override void AnalyzeFrames(Symbols frame) => seeds = MacroStmt.AnalyzeMacro(frame, parameters, defaults, body, features);

    public override Flow Exec(RenderState state, Frame frame)
    {
        var caller = new Macro("caller", parameters, defaults, body, frame, features, seeds) { IsCaller = true };
        var callArgs = call.Arguments.Eval(state, frame);
        var keywords = new List<KeyValuePair<string, object?>>(callArgs.Keywords ?? []) { new("caller", caller) };
        state.Out.Append(Py.Str(Py.Call(state, call.Callee.Eval(state, frame), new Args(callArgs.Positional, keywords))));
        return Flow.Normal;
    }
}

internal sealed class WithStmt(int line, List<(Target Target, Expr Value)> assignments, List<Stmt> body) : Stmt(line)
{
    private string[] seeds = [];

    public override void Declare(Symbols frame)
    {
        foreach (var (_, value) in assignments) Scopes.Loads(value, frame);
    }

    public override void AnalyzeFrames(Symbols frame)
    {
        var inner = new Symbols(frame);
        foreach (var (target, _) in assignments) target.Declare(inner, asParameter: true);
        seeds = Scopes.AnalyzeFrame(body, inner);
    }

    public override Flow Exec(RenderState state, Frame frame)
    {
        var scope = new Frame(frame, seeds);
        foreach (var (target, value) in assignments) target.Assign(scope, value.Eval(state, frame));
        return RunBody(body, state, scope);
    }
}

internal sealed class LoopControlStmt(int line, Flow flow) : Stmt(line)
{
    public override Flow Exec(RenderState state, Frame frame) => flow;
}

/// <summary>
/// transformers' <c>{% generation %}...{% endgeneration %}</c> (its AssistantTracker extension): renders the body and,
/// when tracking, records the [start, end) range it occupies in the output, as <c>return_assistant_tokens_mask</c> does.
/// </summary>
internal sealed class GenerationStmt(int line, List<Stmt> body) : Stmt(line)
{
    private string[] seeds = [];

    /// <summary>transformers compiles the tag to a call block, so its body is a caller frame.</summary>
    public override void AnalyzeFrames(Symbols frame) => seeds = MacroStmt.AnalyzeMacro(frame, [], [], body, Macro.Features.None);

    public override Flow Exec(RenderState state, Frame frame)
    {
        if (state.GenerationSpans is not null && state.Capturing)
        {
            throw new ChatTemplateException("{% generation %} inside a macro, call, filter or set block: transformers would report wrong assistant offsets here",
                ChatTemplateErrorKind.Unsupported);
        }
        var text = state.Capture(() => RunBody(body, state, new Frame(frame, seeds)));
        int start = state.Out.Length;
        state.Out.Append(text);
        state.GenerationSpans?.Add((start, start + text.Length));
        return Flow.Normal;
    }
}

/// <summary>An assignment target: a name, a tuple of targets, or a namespace attribute (<c>ns.x</c>, set only).</summary>
internal abstract class Target
{
    public abstract void Assign(Frame frame, object? value);

    /// <summary>Records this target as stores (or, for loop variables and <c>with</c> targets, parameters) of a frame.</summary>
    public abstract void Declare(Symbols frame, bool asParameter);
}

internal sealed class NameTarget(string name) : Target
{
    public string Name { get; } = name;

    public override void Assign(Frame frame, object? value) => frame.Set(Name, value);

    public override void Declare(Symbols frame, bool asParameter)
    {
        if (asParameter) frame.DeclareParameter(Name);
        else frame.Store(Name);
    }
}

internal sealed class TupleTarget(List<Target> items) : Target
{
    public override void Declare(Symbols frame, bool asParameter)
    {
        foreach (var t in items) t.Declare(frame, asParameter);
    }

    public override void Assign(Frame frame, object? value)
    {
        if (!Py.IsIterable(value)) throw Py.TypeError($"cannot unpack non-iterable {Py.TypeName(value)} object");
        var values = Py.Iterate(value).Take(items.Count + 1).ToList();
        if (values.Count > items.Count) throw Py.ValueError($"too many values to unpack (expected {items.Count})");
        if (values.Count < items.Count) throw Py.ValueError($"not enough values to unpack (expected {items.Count}, got {values.Count})");
        for (int i = 0; i < items.Count; i++) items[i].Assign(frame, values[i]);
    }
}

internal sealed class NamespaceTarget(string name, string attribute) : Target
{
    public override void Declare(Symbols frame, bool asParameter) => frame.Load(name);

    public override void Assign(Frame frame, object? value)
    {
        if (!frame.TryGet(name, out var ns) && !Globals.TryGet(name, out ns)) ns = null;
        if (ns is not PyNamespace n) throw new ChatTemplateException("cannot assign attribute on non-namespace object", ChatTemplateErrorKind.Runtime);
        n.Attributes.Set(attribute, value);
    }
}
