namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

/// <summary>
/// jinja2 decides at compile time which names are local to which frame (its <c>idtracking</c> module), and that
/// decides what a name reads before it is assigned: a name whose first mention in a frame is a store starts out
/// undefined in that frame, and frames nested in it (loop bodies, macros, call/filter/set blocks) see that undefined
/// local rather than the render variable of the same name, until the store runs. This class replays that analysis:
/// <see cref="AnalyzeFrame"/> returns, per frame, the names to start as undefined (a "seed"), which the interpreter
/// applies when it enters the frame. Every other rule (reads fall through to enclosing frames, then to the render
/// variables and globals) is what <see cref="Frame"/> does anyway.
/// </summary>
internal static class Scopes
{
    /// <summary>Analyzes one frame's statements (jinja2's RootVisitor + FrameSymbolVisitor); returns the names it seeds as undefined.</summary>
    public static string[] AnalyzeFrame(IEnumerable<Stmt> body, Symbols frame)
    {
        var statements = body as IReadOnlyCollection<Stmt> ?? body.ToList();
        foreach (var s in statements) s.Declare(frame);
        var seeds = frame.UndefinedNames();
        foreach (var s in statements) s.AnalyzeFrames(frame);
        return seeds;
    }

    /// <summary>Records the names an expression reads (jinja2's <c>Symbols.load</c> for each <c>Name</c> in load context).</summary>
    public static void Loads(Expr? e, Symbols frame)
    {
        if (e is null) return;
        if (e is NameExpr n)
        {
            frame.Load(n.Name);
            return;
        }
        foreach (var c in e.Children) Loads(c, frame);
    }

    /// <summary>True when an expression reads <paramref name="name"/> anywhere in it.</summary>
    public static bool References(Expr? e, string name) =>
        e is not null && (e is NameExpr n ? n.Name == name : e.Children.Any(c => References(c, name)));
}

/// <summary>jinja2's <c>Symbols</c>: the names a frame defines and how each is initialised when the frame is entered.</summary>
internal sealed class Symbols(Symbols? parent)
{
    public enum LoadKind { Parameter, Resolve, Alias, Undefined }

    private Dictionary<string, LoadKind> refs = new(StringComparer.Ordinal);
    private HashSet<string> stores = new(StringComparer.Ordinal);

    public Symbols? Parent { get; } = parent;

    private bool FindRef(string name) => refs.ContainsKey(name) || (Parent?.FindRef(name) ?? false);

    public void Load(string name)
    {
        if (!FindRef(name)) refs[name] = LoadKind.Resolve;
    }

    public void Store(string name)
    {
        stores.Add(name);
        if (refs.ContainsKey(name)) return;
        refs[name] = Parent is not null && Parent.FindRef(name) ? LoadKind.Alias : LoadKind.Undefined;
    }

    public void DeclareParameter(string name)
    {
        stores.Add(name);
        refs[name] = LoadKind.Parameter;
    }

    public Symbols Copy() => new(Parent) { refs = new(refs, StringComparer.Ordinal), stores = new(stores, StringComparer.Ordinal) };

    /// <summary>After an <c>if</c>: names first stored inside a branch are initialised from outside (alias or resolve), not undefined.</summary>
    public void BranchUpdate(IReadOnlyList<Symbols> branches)
    {
        var newStores = new HashSet<string>(branches.SelectMany(b => b.stores), StringComparer.Ordinal);
        newStores.ExceptWith(stores);
        foreach (var b in branches)
        {
            foreach (var (k, v) in b.refs) refs[k] = v;
            stores.UnionWith(b.stores);
        }
        foreach (var name in newStores) refs[name] = Parent is not null && Parent.FindRef(name) ? LoadKind.Alias : LoadKind.Resolve;
    }

    public string[] UndefinedNames() => refs.Where(p => p.Value == LoadKind.Undefined).Select(p => p.Key).ToArray();
}
