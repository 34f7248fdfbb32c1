using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FuseSharp.Fusion.Recipes;

/// <summary>
/// A typed reader over one YAML mapping of a recipe: each getter consumes a key, <see cref="Done"/> rejects keys
/// nobody asked for (a misspelt option never passes silently). Errors name the file, line and key.
/// </summary>
internal sealed class RecipeYaml
{
    private readonly YamlMappingNode _node;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    private RecipeYaml(YamlMappingNode node, string file, string path)
    {
        _node = node;
        File = file;
        Path = path;
    }

    public string File { get; }

    /// <summary>Where this mapping is in the recipe (e.g. <c>train</c>, <c>sources[1]</c>).</summary>
    public string Path { get; }

    public static RecipeYaml Parse(string text, string file)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new FusionException($"{file}:{e.Start.Line}: {e.Message}", "the recipe must be valid YAML");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new FusionException($"{file}: the recipe must be a YAML mapping (kind, target, sources, corpus, ...)", "see docs/fusion-pipeline.md for a complete recipe");
        return new RecipeYaml(root, file, "");
    }

    public bool Has(string key) => Find(key) is not null;

    public string? String(string key, string? fallback = null) => Find(key) switch
    {
        null => fallback,
        YamlScalarNode s => s.Value,
        var n => throw Error(n, key, "must be a single value"),
    };

    public string RequiredString(string key) => String(key) ?? throw new FusionException($"{File}: {Name(key)} is missing", "every recipe names its target, sources and corpus");

    public double Double(string key, double fallback) => Find(key) is { } n ? ParseDouble(n, key) : fallback;

    public double? OptionalDouble(string key) => Find(key) is { } n ? ParseDouble(n, key) : null;

    public int Int(string key, int fallback) => Find(key) is { } n ? ParseInt(n, key) : fallback;

    public long? OptionalLong(string key) => Find(key) is { } n ? ParseInt(n, key) : null;

    public bool Bool(string key, bool fallback) => Find(key) switch
    {
        null => fallback,
        YamlScalarNode { Value: "true" or "True" or "yes" } => true,
        YamlScalarNode { Value: "false" or "False" or "no" } => false,
        var n => throw Error(n, key, "must be true or false"),
    };

    /// <summary>One of <paramref name="choices"/> (case-insensitive).</summary>
    public T Choice<T>(string key, T fallback, params (string Name, T Value)[] choices)
    {
        var s = String(key);
        if (s is null) return fallback;
        foreach (var (name, value) in choices)
            if (string.Equals(name, s, StringComparison.OrdinalIgnoreCase)) return value;
        throw Error(Find(key)!, key, $"must be one of {string.Join(", ", choices.Select(c => c.Name))} (got '{s}')");
    }

    /// <summary>A nested mapping, or an empty one when the key is absent.</summary>
    public RecipeYaml Section(string key) => Find(key) switch
    {
        null => new RecipeYaml(new YamlMappingNode(), File, Name(key)),
        YamlMappingNode m => new RecipeYaml(m, File, Name(key)),
        var n => throw Error(n, key, "must be a mapping"),
    };

    /// <summary>A list of mappings (empty when absent).</summary>
    public IReadOnlyList<RecipeYaml> Sections(string key) => Find(key) switch
    {
        null => [],
        YamlSequenceNode seq => seq.Children.Select((c, i) => c is YamlMappingNode m ? new RecipeYaml(m, File, $"{Name(key)}[{i}]") : throw Error(c, $"{key}[{i}]", "must be a mapping")).ToList(),
        var n => throw Error(n, key, "must be a list"),
    };

    /// <summary>The mapping's scalar values as given (e.g. merge-method parameters), for passing through.</summary>
    public IReadOnlyList<(string Key, string Value)> Scalars(string key) => Find(key) switch
    {
        null => [],
        YamlMappingNode m => m.Children.Select(kv => (((YamlScalarNode)kv.Key).Value ?? "", kv.Value is YamlScalarNode s ? s.Value ?? "" : throw Error(kv.Value, key, "values must be single values"))).ToList(),
        var n => throw Error(n, key, "must be a mapping"),
    };

    /// <summary>A nested mapping as JSON (numbers, booleans and null typed as YAML plain scalars read), e.g. a config.json.</summary>
    public System.Text.Json.Nodes.JsonObject Json(string key) => Find(key) switch
    {
        null => [],
        // Round-tripped through text so that numbers read back as any numeric type (as config.json files do).
        YamlMappingNode m => System.Text.Json.Nodes.JsonNode.Parse(ToJson(m)!.ToJsonString())!.AsObject(),
        var n => throw Error(n, key, "must be a mapping"),
    };

    private static System.Text.Json.Nodes.JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new System.Text.Json.Nodes.JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode s => new System.Text.Json.Nodes.JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Style: not ScalarStyle.Plain } q => q.Value,
        YamlScalarNode { Value: null or "null" or "~" or "" } => null,
        YamlScalarNode { Value: "true" or "True" } => true,
        YamlScalarNode { Value: "false" or "False" } => false,
        YamlScalarNode { Value: var v } when int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) => i,
        YamlScalarNode { Value: var v } when long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) => l,
        YamlScalarNode { Value: var v } when double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        YamlScalarNode sc => sc.Value,
        _ => null,
    };

    /// <summary>A list of single values (empty when absent); a single value counts as a list of one.</summary>
    public IReadOnlyList<string> Strings(string key) => Find(key) switch
    {
        null => [],
        YamlScalarNode s => [s.Value ?? ""],
        YamlSequenceNode seq => seq.Children.Select((c, i) => c is YamlScalarNode s ? s.Value ?? "" : throw Error(c, $"{key}[{i}]", "must be a single value")).ToList(),
        var n => throw Error(n, key, "must be a list of values"),
    };

    /// <summary>Whether the key holds a single value (not a mapping or list).</summary>
    public bool IsScalar(string key) => Find(key) is YamlScalarNode;

    /// <summary>Rejects keys no getter read.</summary>
    public void Done()
    {
        foreach (var kv in _node.Children)
        {
            var k = (kv.Key as YamlScalarNode)?.Value ?? "";
            if (!_used.Contains(k)) throw Error(kv.Key, k, "is not a recipe option here");
        }
    }

    private YamlNode? Find(string key)
    {
        _used.Add(key);
        foreach (var kv in _node.Children)
            if (kv.Key is YamlScalarNode s && s.Value == key) return kv.Value is YamlScalarNode { Value: null or "" or "~" or "null", Style: ScalarStyle.Plain } ? null : kv.Value;
        return null;
    }

    private string Name(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    private FusionException Error(YamlNode node, string key, string what) =>
        new($"{File}:{node.Start.Line}: {Name(key)} {what}", "see docs/fusion-pipeline.md (fuse run) for the recipe options");

    private double ParseDouble(YamlNode n, string key) =>
        n is YamlScalarNode { Value: { } v } && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) ? d : throw Error(n, key, "must be a number");

    private int ParseInt(YamlNode n, string key) =>
        n is YamlScalarNode { Value: { } v } && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i : throw Error(n, key, "must be an integer");
}
