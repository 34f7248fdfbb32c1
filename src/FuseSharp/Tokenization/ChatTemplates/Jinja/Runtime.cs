using System.Text;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// A variable scope. jinja2 gives each for-loop iteration, macro call, call/filter/set block body and
/// <c>with</c> block a fresh scope whose reads fall through to the enclosing one and whose writes stay local;
/// <c>if</c> does not open a scope. A macro's scope hangs off the scope it was defined in (live, so top-level
/// variables set after the definition are visible).
/// </summary>
internal sealed class Frame
{
    /// <summary>Marks a frame-local name that jinja2 starts as undefined (see <see cref="Scopes"/>).</summary>
    private static readonly object Unassigned = new();

    private Dictionary<string, object?>? vars;

    public Frame(Frame? parent, string[]? undefinedNames = null)
    {
        Parent = parent;
        if (undefinedNames is { Length: > 0 })
        {
            vars = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var n in undefinedNames) vars[n] = Unassigned;
        }
    }

    public Frame? Parent { get; }

    public bool TryGet(string name, out object? value)
    {
        for (var f = this; f is not null; f = f.Parent)
        {
            if (f.vars is not null && f.vars.TryGetValue(name, out value))
            {
                if (value == Unassigned) value = Undefined.Named(name);
                return true;
            }
        }
        value = null;
        return false;
    }

    public void Set(string name, object? value) => (vars ??= new Dictionary<string, object?>(StringComparer.Ordinal))[name] = value;
}

/// <summary>The mutable state of one render: output buffers, generation spans, the clock and the recursion guard.</summary>
internal sealed class RenderState(DateTime now, bool trackGeneration)
{
    /// <summary>Macro/recursive-loop depth limit (CPython's recursion limit stops jinja2 at a similar depth).</summary>
    private const int MaxCallDepth = 128;
    private readonly Stack<StringBuilder> buffers = new([new StringBuilder(1024)]);
    private int callDepth;

    public StringBuilder Out => buffers.Peek();

    public DateTime Now { get; } = now;

    /// <summary>[start, end) UTF-16 ranges of the top-level output rendered by <c>{% generation %}</c> blocks.</summary>
    public List<(int Start, int End)>? GenerationSpans { get; } = trackGeneration ? [] : null;

    /// <summary>True while rendering into a capture (macro, call/filter/set block) rather than the template output.</summary>
    public bool Capturing => buffers.Count > 1;

    public string Result => buffers.Count == 1 ? buffers.Peek().ToString() : throw new InvalidOperationException("unbalanced capture");

    /// <summary>Runs <paramref name="body"/> with its output captured, returning the text.</summary>
    public string Capture(Func<Flow> body)
    {
        buffers.Push(new StringBuilder());
        try
        {
            body();
            return buffers.Peek().ToString();
        }
        finally
        {
            buffers.Pop();
        }
    }

    public void EnterCall()
    {
        if (++callDepth > MaxCallDepth)
        {
            callDepth = 0;
            throw new ChatTemplateException("RecursionError: maximum macro/loop recursion depth exceeded", ChatTemplateErrorKind.Runtime);
        }
    }

    public void ExitCall() => callDepth--;
}

internal enum Flow { Normal, Break, Continue }

/// <summary>A <c>{% macro %}</c> (or the body of a <c>{% call %}</c> block, passed as <c>caller</c>).</summary>
internal sealed class Macro(string name, string[] parameters, Expr?[] defaults, List<Stmt> body, Frame closure, Macro.Features features, string[] seeds) : PyCallable
{
    /// <summary>The body of a <c>{% call %}</c> block (jinja2 prints it as <c>&lt;Macro anonymous&gt;</c>).</summary>
    public bool IsCaller { get; init; }

    /// <summary>What the body references, which decides how extra arguments are treated (as jinja2 does).</summary>
    [Flags]
    public enum Features { None = 0, Varargs = 1, Kwargs = 2, Caller = 4 }

    public override string Name { get; } = name;

    public override object? Call(RenderState state, Args args)
    {
        var frame = new Frame(closure, seeds);
        int n = parameters.Length;
        var values = new object?[n];
        var bound = new bool[n];
        int given = Math.Min(args.Count, n);
        for (int i = 0; i < given; i++)
        {
            values[i] = args.Positional[i];
            bound[i] = true;
        }
        var extra = new List<KeyValuePair<string, object?>>();
        bool foundCaller = given == n && Array.IndexOf(parameters, "caller") >= 0;
        if (args.Keywords is not null)
        {
            foreach (var (k, v) in args.Keywords)
            {
                int at = Array.IndexOf(parameters, k);
                if (at >= given && !bound[at])
                {
                    values[at] = v;
                    bound[at] = true;
                    if (k == "caller") foundCaller = true;
                }
                else
                {
                    extra.Add(new(k, v));
                }
            }
        }
        if (given < n && Array.IndexOf(parameters, "caller") >= given) foundCaller = true;
        if ((features & Features.Caller) != 0 && !foundCaller)
        {
            int ci = extra.FindIndex(p => p.Key == "caller");
            object? caller = Undefined.WithHint("No caller defined");
            if (ci >= 0)
            {
                caller = extra[ci].Value ?? caller;
                extra.RemoveAt(ci);
            }
            frame.Set("caller", caller);
        }
        if ((features & Features.Kwargs) != 0)
        {
            var kw = new PyDict(extra.Count);
            foreach (var (k, v) in extra) kw.Set(k, v);
            frame.Set("kwargs", kw);
        }
        else if (extra.Count > 0)
        {
            if (extra.Exists(p => p.Key == "caller"))
                throw Py.TypeError($"macro {PyStr.Repr(Name)} was invoked with two values for the special caller argument. This is most likely a bug.");
            throw Py.TypeError($"macro {PyStr.Repr(Name)} takes no keyword argument {PyStr.Repr(extra[0].Key)}");
        }
        if ((features & Features.Varargs) != 0) frame.Set("varargs", new PyList(args.Positional.Skip(n).ToList(), isTuple: true));
        else if (args.Count > n) throw Py.TypeError($"macro {PyStr.Repr(Name)} takes not more than {n} argument(s)");

        state.EnterCall();
        try
        {
            for (int i = 0; i < n; i++)
            {
                // Defaults belong to the last parameters and are evaluated in the macro's scope, after the earlier parameters.
                int d = i - (n - defaults.Length);
                object? value = bound[i] ? values[i]
                    : d >= 0 && defaults[d] is { } def ? def.Eval(state, frame)
                    : Undefined.WithHint($"parameter {PyStr.Repr(parameters[i])} was not provided");
                frame.Set(parameters[i], value);
            }
            return state.Capture(() => Stmt.RunBody(body, state, frame));
        }
        finally
        {
            state.ExitCall();
        }
    }
}

/// <summary>jinja2's <c>loop</c> variable: lazy iteration with one item of look-ahead for <c>loop.last</c>/<c>nextitem</c>.</summary>
internal sealed class LoopContext
{
    private static readonly object Missing = new();
    private readonly Func<object?, int, string>? recurse;
    private IEnumerator<object?> source;
    private long? length;
    private object? after = Missing;
    private object? current = Missing;
    private object? before = Missing;
    private PyList? lastChanged;

    public LoopContext(IEnumerable<object?> items, long? knownLength, int depth0, Func<object?, int, string>? recurse)
    {
        source = items.GetEnumerator();
        length = knownLength;
        Depth0 = depth0;
        this.recurse = recurse;
    }

    public long Index0 { get; private set; } = -1;

    public int Depth0 { get; }

    public long Length
    {
        get
        {
            if (length is null)
            {
                var rest = new List<object?>();
                while (source.MoveNext()) rest.Add(source.Current);
                source = rest.GetEnumerator();
                length = rest.Count + Index0 + 1 + (after == Missing ? 0 : 1);
            }
            return length.Value;
        }
    }

    public bool MoveNext(out object? item)
    {
        if (after != Missing)
        {
            item = after;
            after = Missing;
        }
        else if (source.MoveNext())
        {
            item = source.Current;
        }
        else
        {
            item = null;
            return false;
        }
        Index0++;
        before = current;
        current = item;
        return true;
    }

    private object? PeekNext()
    {
        if (after == Missing) after = source.MoveNext() ? source.Current : Missing;
        return after;
    }

    public bool TryGetAttribute(string name, out object? value)
    {
        value = name switch
        {
            "index0" => Index0,
            "index" => Index0 + 1,
            "revindex" => Length - Index0,
            "revindex0" => Length - Index0 - 1,
            "first" => Py.Bool(Index0 == 0),
            "last" => Py.Bool(PeekNext() == Missing),
            "length" => Length,
            "depth" => (long)Depth0 + 1,
            "depth0" => (long)Depth0,
            "previtem" => Index0 == 0 ? Undefined.WithHint("there is no previous item") : before,
            "nextitem" => PeekNext() is var n && n == Missing ? Undefined.WithHint("there is no next item") : n,
            "cycle" => new BuiltinFunction("cycle", (_, a) => a.Count == 0 ? throw Py.TypeError("no items for cycling given") : a.Positional[(int)(Index0 % a.Count)]),
            "changed" => new BuiltinFunction("changed", (_, a) =>
            {
                var v = new PyList(a.Positional.ToList(), isTuple: true);
                if (lastChanged is not null && Py.Equal(lastChanged, v)) return Py.False;
                lastChanged = v;
                return Py.True;
            }),
            _ => Missing,
        };
        return value != Missing;
    }

    /// <summary><c>loop(children)</c> inside a <c>recursive</c> loop: renders the loop body over the new items one level deeper.</summary>
    public object? CallRecursive(RenderState state, Args args)
    {
        if (recurse is null) throw Py.TypeError("The loop must have the 'recursive' marker to be called recursively.");
        if (args.Count != 1 || args.HasKeywords) throw Py.TypeError("loop() takes exactly one argument");
        state.EnterCall();
        try
        {
            return recurse(args.Positional[0], Depth0 + 1);
        }
        finally
        {
            state.ExitCall();
        }
    }
}

/// <summary>jinja2's <c>cycler(*items)</c>.</summary>
internal sealed class Cycler(List<object?> items)
{
    private int position;

    public bool TryGetAttribute(string name, out object? value)
    {
        value = name switch
        {
            "current" => items[position],
            "next" => new BuiltinFunction("next", (_, _) =>
            {
                var rv = items[position];
                position = (position + 1) % items.Count;
                return rv;
            }),
            "reset" => new BuiltinFunction("reset", (_, _) =>
            {
                position = 0;
                return null;
            }),
            "items" => new PyList(items),
            _ => null,
        };
        return name is "current" or "next" or "reset" or "items";
    }
}

/// <summary>jinja2's <c>joiner(sep)</c>: returns "" on the first call and <c>sep</c> afterwards.</summary>
internal sealed class Joiner(string separator)
{
    private bool used;

    public object? Call(Args args)
    {
        if (args.Count > 0 || args.HasKeywords) throw Py.TypeError("joiner() takes no arguments");
        if (used) return separator;
        used = true;
        return "";
    }
}
