using System.Collections;

namespace FuseSharp.Tokenization.ChatTemplates.Jinja;

// The runtime values of the interpreter, modelled on the Python objects jinja2 works with:
//   None -> null, bool -> bool, int -> long, float -> double, str -> string (code points, see PyStr),
//   list/tuple -> PyList, dict -> PyDict, jinja2 Undefined -> Undefined, markupsafe.Markup -> Markup,
//   generators/iterators -> PyIterator, range -> PyRange, dict views -> PyDictView, jinja2 Namespace -> PyNamespace,
//   functions, macros and bound methods -> PyCallable.
// Python ints are unbounded; here they are 64-bit and overflow raises a clear error instead of wrapping.

/// <summary>jinja2's default <c>Undefined</c>: prints as "", iterates as empty, is falsy; anything else raises.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Empty = new(null, null, false, null, false);

    private Undefined(string? name, object? obj, bool hasObj, string? hint, bool unsafeAccess)
    {
        Name = name;
        Obj = obj;
        HasObj = hasObj;
        Hint = hint;
        Unsafe = unsafeAccess;
    }

    public string? Name { get; }

    public object? Obj { get; }

    public bool HasObj { get; }

    public string? Hint { get; }

    /// <summary>The sandbox's "unsafe" undefined: using it raises a SecurityError.</summary>
    public bool Unsafe { get; }

    public static Undefined Named(string name) => new(name, null, false, null, false);

    public static Undefined Missing(object? obj, object? key) => new(key is string s ? s : Py.Repr(key), obj, true, null, false) { KeyIsString = key is string };

    public static Undefined WithHint(string hint) => new(null, null, false, hint, false);

    public static Undefined UnsafeAttribute(object? obj, string attr) =>
        new(attr, obj, true, $"access to attribute '{attr}' of '{Py.TypeName(obj)}' object is unsafe.", true);

    private bool KeyIsString { get; init; } = true;

    /// <summary>jinja2's <c>_undefined_message</c>.</summary>
    public string Message
    {
        get
        {
            if (Hint is not null) return Hint;
            if (!HasObj) return $"{PyStr.Repr(Name ?? "")} is undefined";
            if (!KeyIsString) return $"{Py.ObjectTypeRepr(Obj)} has no element {Name}";
            return $"{PyStr.Repr(Py.ObjectTypeRepr(Obj))} has no attribute {PyStr.Repr(Name ?? "")}";
        }
    }

    public ChatTemplateException Fail() =>
        new(Message, Unsafe ? ChatTemplateErrorKind.Security : ChatTemplateErrorKind.Undefined);
}

/// <summary><c>markupsafe.Markup</c>: a string marked safe (from <c>|safe</c> / <c>|escape</c>); <c>+</c> and <c>%</c> escape the other side.</summary>
internal sealed class Markup(string value)
{
    public string Value { get; } = value;

    public override string ToString() => Value;
}

/// <summary>A Python list or tuple (optionally a named tuple, as jinja2's <c>groupby</c> returns).</summary>
internal sealed class PyList : IReadOnlyList<object?>
{
    public static readonly PyList EmptyTuple = new([], isTuple: true);

    public PyList(List<object?> items, bool isTuple = false, string[]? fields = null, string? tupleName = null)
    {
        Items = items;
        IsTuple = isTuple;
        Fields = fields;
        TupleName = tupleName;
    }

    public List<object?> Items { get; }

    public bool IsTuple { get; }

    /// <summary>Field names of a named tuple, else null.</summary>
    public string[]? Fields { get; }

    public string? TupleName { get; }

    public int Count => Items.Count;

    public object? this[int index] => Items[index];

    public static PyList Tuple(params object?[] items) => new([.. items], isTuple: true);

    public IEnumerator<object?> GetEnumerator() => Items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>An insertion-ordered Python dict with Python key equality (1 == 1.0 == True).</summary>
internal sealed class PyDict
{
    private const int IndexThreshold = 8;
    private readonly List<object?> keys;
    private readonly List<object?> values;
    private Dictionary<PyKey, int>? index;

    public PyDict(int capacity = 4)
    {
        keys = new List<object?>(capacity);
        values = new List<object?>(capacity);
    }

    public int Count => keys.Count;

    public IReadOnlyList<object?> Keys => keys;

    public IReadOnlyList<object?> Values => values;

    public IEnumerable<KeyValuePair<object?, object?>> Items
    {
        get
        {
            for (int i = 0; i < keys.Count; i++) yield return new(keys[i], values[i]);
        }
    }

    public bool TryGetValue(object? key, out object? value)
    {
        int i = IndexOf(key);
        value = i >= 0 ? values[i] : null;
        return i >= 0;
    }

    public bool ContainsKey(object? key) => IndexOf(key) >= 0;

    /// <summary>Sets a key; an existing key keeps its position (as Python does).</summary>
    public void Set(object? key, object? value)
    {
        int i = IndexOf(key);
        if (i >= 0)
        {
            values[i] = value;
            return;
        }
        keys.Add(key);
        values.Add(value);
        if (index is not null) index[new PyKey(key)] = keys.Count - 1;
        else if (keys.Count > IndexThreshold) BuildIndex();
    }

    public PyDict Copy()
    {
        var d = new PyDict(Count);
        for (int i = 0; i < keys.Count; i++) d.Set(keys[i], values[i]);
        return d;
    }

    private int IndexOf(object? key)
    {
        Py.CheckHashable(key);
        if (index is not null) return index.TryGetValue(new PyKey(key), out var i) ? i : -1;
        if (key is string s)
        {
            for (int j = 0; j < keys.Count; j++)
            {
                if (keys[j] is string k ? string.Equals(k, s, StringComparison.Ordinal) : Py.KeyEquals(keys[j], key)) return j;
            }
            return -1;
        }
        for (int j = 0; j < keys.Count; j++)
        {
            if (Py.KeyEquals(keys[j], key)) return j;
        }
        return -1;
    }

    private void BuildIndex()
    {
        index = new Dictionary<PyKey, int>(keys.Count * 2);
        for (int i = 0; i < keys.Count; i++) index[new PyKey(keys[i])] = i;
    }

    private readonly record struct PyKey(object? Value)
    {
        public bool Equals(PyKey other) => Py.KeyEquals(Value, other.Value);

        public override int GetHashCode() => Py.Hash(Value);
    }
}

/// <summary><c>dict.keys()</c>, <c>dict.values()</c>, <c>dict.items()</c>.</summary>
internal sealed class PyDictView(PyDict dict, PyDictView.ViewKind kind)
{
    public enum ViewKind { Keys, Values, Items }

    public PyDict Dict { get; } = dict;

    public ViewKind Kind { get; } = kind;

    public string TypeName => Kind switch { ViewKind.Keys => "dict_keys", ViewKind.Values => "dict_values", _ => "dict_items" };

    public IEnumerable<object?> Iterate() => Kind switch
    {
        ViewKind.Keys => Dict.Keys,
        ViewKind.Values => Dict.Values,
        _ => Dict.Items.Select(p => (object?)PyList.Tuple(p.Key, p.Value)),
    };
}

/// <summary>A one-shot Python iterator (a generator, <c>reversed(...)</c>, <c>dict.items()</c> through <c>|items</c>).</summary>
internal sealed class PyIterator(IEnumerable<object?> source, string typeName)
{
    private IEnumerator<object?>? enumerator;

    public string TypeName { get; } = typeName;

    /// <summary>Yields the items not consumed yet; consuming is shared by every caller, as in Python.</summary>
    public IEnumerable<object?> Consume()
    {
        enumerator ??= source.GetEnumerator();
        while (enumerator.MoveNext()) yield return enumerator.Current;
    }
}

/// <summary>Python's <c>range</c>.</summary>
internal sealed class PyRange(long start, long stop, long step)
{
    public long Start { get; } = start;

    public long Stop { get; } = stop;

    public long Step { get; } = step;

    public long Length => Step > 0
        ? (Stop > Start ? (Stop - Start - 1) / Step + 1 : 0)
        : (Start > Stop ? (Start - Stop - 1) / -Step + 1 : 0);

    public long this[long i] => Start + i * Step;

    public IEnumerable<object?> Iterate()
    {
        long n = Length;
        for (long i = 0; i < n; i++) yield return Start + i * Step;
    }
}

/// <summary>jinja2's <c>Namespace</c>: the one object templates may assign attributes to (<c>{% set ns.x = 1 %}</c>).</summary>
internal sealed class PyNamespace(PyDict attributes)
{
    public PyDict Attributes { get; } = attributes;
}

/// <summary>Positional and keyword arguments of a call, as Python passes them.</summary>
internal sealed class Args
{
    public static readonly Args None = new([], null);

    public Args(List<object?> positional, List<KeyValuePair<string, object?>>? keywords)
    {
        Positional = positional;
        Keywords = keywords;
    }

    public List<object?> Positional { get; }

    public List<KeyValuePair<string, object?>>? Keywords { get; }

    public int Count => Positional.Count;

    public bool HasKeywords => Keywords is { Count: > 0 };

    public static Args Of(params object?[] positional) => new([.. positional], null);

    /// <summary>Binds parameter <paramref name="position"/> / <paramref name="name"/>; false when not passed.</summary>
    public bool TryGet(int position, string name, out object? value)
    {
        if (position >= 0 && position < Positional.Count)
        {
            value = Positional[position];
            return true;
        }
        if (Keywords is not null)
        {
            foreach (var (k, v) in Keywords)
            {
                if (k == name)
                {
                    value = v;
                    return true;
                }
            }
        }
        value = null;
        return false;
    }

    public object? Get(int position, string name, object? fallback) => TryGet(position, name, out var v) ? v : fallback;

    /// <summary>Raises Python's TypeError for too many positional arguments or unknown keywords.</summary>
    public void Check(string function, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw Py.TypeError($"{function}() takes at most {parameters.Length} argument(s) ({Positional.Count} given)");
        if (Keywords is null) return;
        foreach (var (k, _) in Keywords)
        {
            int at = Array.IndexOf(parameters, k);
            if (at < 0) throw Py.TypeError($"{function}() got an unexpected keyword argument '{k}'");
            if (at < Positional.Count) throw Py.TypeError($"{function}() got multiple values for argument '{k}'");
        }
    }

    /// <summary>Drops the first <paramref name="n"/> positional arguments (for filters whose first arguments name another filter/test).</summary>
    public Args Skip(int n) => new(Positional.Skip(n).ToList(), Keywords);
}

/// <summary>Anything a template can call: globals, macros, bound methods, <c>loop</c> of a recursive loop.</summary>
internal abstract class PyCallable
{
    public abstract string Name { get; }

    public abstract object? Call(RenderState state, Args args);
}

/// <summary>A global function (<c>range</c>, <c>namespace</c>, <c>raise_exception</c>, ...).</summary>
internal sealed class BuiltinFunction(string name, Func<RenderState, Args, object?> body) : PyCallable
{
    public override string Name { get; } = name;

    public override object? Call(RenderState state, Args args) => body(state, args);
}

/// <summary>A method looked up on a str/dict/list/... value (<c>s.strip</c>), called later.</summary>
internal sealed class BoundMethod(object? self, string name) : PyCallable
{
    public object? Self { get; } = self;

    public override string Name { get; } = name;

    public override object? Call(RenderState state, Args args) => Methods.Call(state, Self, Name, args);
}
