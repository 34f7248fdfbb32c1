using System.Globalization;
using FuseSharp.Tensors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FuseSharp.Merging.Config;

/// <summary>
/// Reads mergekit YAML (spec §4.1) into a <see cref="MergeConfiguration"/>. The schema is checked strictly: an
/// unknown key, a wrong type, a missing required field or a malformed parameter is a
/// <see cref="MergeConfigException"/> naming the file and line (and the closest known key for a typo), where
/// mergekit's pydantic models silently ignore extra keys. Scalars are typed the way PyYAML does (YAML 1.1 plain
/// scalars: true/false/yes/no/on/off are booleans, ~ and null are null), except that <c>1e-5</c> is read as a
/// number (PyYAML reads it as a string, which mergekit then fails on).
/// </summary>
public static class MergeConfigParser
{
    private static readonly string[] TopLevelKeys =
    [
        "merge_method", "base_model", "models", "slices", "modules", "parameters", "dtype", "out_dtype",
        "tokenizer_source", "tokenizer", "chat_template", "name",
        // FuseSharp: LM-Cocktail's data-driven weights, aliases of the lm_cocktail parameters of the same name.
        "example_data", "temperature",
    ];

    private static readonly string[] ModelKeys = ["model", "parameters"];
    private static readonly string[] SliceKeys = ["sources", "base_model", "residual_weight", "parameters"];
    private static readonly string[] SourceKeys = ["model", "layer_range", "parameters"];
    private static readonly string[] TokenizerKeys = ["source", "tokens", "pad_to_multiple_of"];
    private static readonly string[] TokenKeys = ["source", "force"];
    private static readonly string[] ConditionKeys = ["filter", "value"];

    /// <summary>Reads and parses a config file.</summary>
    /// <exception cref="MergeConfigException">The file is missing, not YAML, or not a valid merge config.</exception>
    public static MergeConfiguration ParseFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MergeConfigException(path, 0, $"cannot read the config ({e.Message})", "give the path of a mergekit YAML file", e);
        }
        return Parse(text, path);
    }

    /// <summary>Parses config text; <paramref name="path"/> is used in messages and to resolve relative model paths.</summary>
    public static MergeConfiguration Parse(string text, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var reader = new Reader(path);
        YamlStream stream = new();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new MergeConfigException(path, (int)e.Start.Line, $"not valid YAML: {Clean(e.Message)}", "check the indentation and quoting around this line", e);
        }
        catch (ArgumentException e)
        {
            // YamlDotNet reports a duplicate mapping key this way.
            throw new MergeConfigException(path, 0, $"not valid YAML: {e.Message}", "a key appears twice in the same mapping", e);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            throw new MergeConfigException(path, 0, "the config is empty", "a merge config needs at least merge_method and models (or slices)");
        if (stream.Documents.Count > 1)
            throw new MergeConfigException(path, (int)stream.Documents[1].RootNode.Start.Line,
                "the file holds several YAML documents (a mergekit-multi config)", "run each merge separately; FuseSharp merges one document per call");
        return reader.ReadRoot(stream.Documents[0].RootNode, text);
    }

    private static string Clean(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (...): ".
        int i = message.IndexOf("): ", StringComparison.Ordinal);
        return i >= 0 && message.StartsWith('(') ? message[(i + 3)..] : message;
    }

    private sealed class Reader(string? path)
    {
        private MergeConfigException Error(YamlNode node, string problem, string? hint = null) =>
            new(path, (int)node.Start.Line, problem, hint);

        private SourceLocation Loc(YamlNode node) => new(path, (int)node.Start.Line);

        public MergeConfiguration ReadRoot(YamlNode root, string text)
        {
            var map = Mapping(root, "the config");
            CheckKeys(map, TopLevelKeys, "top-level key");
            var methodNode = Get(map, "merge_method") ?? throw Error(root, "missing 'merge_method'",
                $"add e.g. 'merge_method: linear' (one of: {string.Join(", ", Methods.MergeMethodRegistry.Names)})");
            var method = String(methodNode, "merge_method");

            if (Get(map, "modules") is { } modules)
                throw Error(modules, "'modules' (multi-module models such as vision-language models) is not supported yet",
                    "merge the text model with 'models' or 'slices'");
            var modelsNode = Get(map, "models");
            var slicesNode = Get(map, "slices");
            if ((modelsNode is null) == (slicesNode is null))
                throw Error(root, modelsNode is null ? "neither 'models' nor 'slices' is given" : "both 'models' and 'slices' are given",
                    "exactly one of 'models' or 'slices' must be present");

            var parameters = Get(map, "parameters") is { } p ? Parameters(p) : ParameterSet.Empty;
            foreach (var alias in new[] { "example_data", "temperature" })
            {
                if (Get(map, alias) is not { } a) continue;
                if (parameters.TryGet(alias, out _))
                    throw Error(a, $"'{alias}' is given both at the top level and under 'parameters'", "keep one of them");
                parameters = parameters.With(alias, Setting(a));
            }

            TokenizerDefinition? tokenizer = null;
            var legacy = Get(map, "tokenizer_source");
            var tokNode = Get(map, "tokenizer");
            if (legacy is not null && tokNode is not null)
                throw Error(tokNode, "both 'tokenizer_source' and 'tokenizer' are given", "use one: 'tokenizer: {source: ...}' is the newer form");
            if (legacy is not null && !IsNull(legacy))
            {
                var src = String(legacy, "tokenizer_source");
                tokenizer = new TokenizerDefinition(SourceName(src), SourceModel(src, legacy), new Dictionary<string, TokenEmbeddingSettings>(), null, Loc(legacy));
            }
            else if (tokNode is not null && !IsNull(tokNode))
            {
                tokenizer = Tokenizer(tokNode);
            }

            string? chatTemplate = Get(map, "chat_template") is { } ct && !IsNull(ct) ? String(ct, "chat_template") : null;
            if (chatTemplate is not null) ChatTemplates.Validate(chatTemplate, path, (int)Get(map, "chat_template")!.Start.Line);

            return new MergeConfiguration
            {
                MergeMethod = method,
                MergeMethodLocation = Loc(methodNode),
                BaseModel = Get(map, "base_model") is { } b && !IsNull(b) ? Model(b, "base_model") : null,
                Models = modelsNode is null ? null : Models(modelsNode),
                Slices = slicesNode is null ? null : Slices(slicesNode),
                Parameters = parameters,
                DType = Get(map, "dtype") is { } d && !IsNull(d) ? DTypeOf(d, "dtype") : null,
                OutDType = Get(map, "out_dtype") is { } od && !IsNull(od) ? DTypeOf(od, "out_dtype") : null,
                Tokenizer = tokenizer,
                ChatTemplate = chatTemplate,
                Name = Get(map, "name") is { } n && !IsNull(n) ? String(n, "name") : null,
                SourceText = text,
                SourcePath = path,
            };
        }

        private List<InputModelDefinition> Models(YamlNode node)
        {
            var seq = Sequence(node, "'models'");
            if (seq.Children.Count == 0) throw Error(node, "'models' is empty", "list at least one model");
            var list = new List<InputModelDefinition>();
            foreach (var item in seq.Children)
            {
                // A bare string is accepted as shorthand for {model: ...}.
                if (item is YamlScalarNode)
                {
                    list.Add(new InputModelDefinition(Model(item, "model"), ParameterSet.Empty, Loc(item)));
                    continue;
                }
                var m = Mapping(item, "an entry of 'models'");
                CheckKeys(m, ModelKeys, "key in a 'models' entry");
                var model = Get(m, "model") ?? throw Error(item, "a 'models' entry has no 'model'", "write '- model: path/or/org-name'");
                list.Add(new InputModelDefinition(Model(model, "model"),
                    Get(m, "parameters") is { } p && !IsNull(p) ? Parameters(p) : ParameterSet.Empty, Loc(item)));
            }
            return list;
        }

        private List<OutputSliceDefinition> Slices(YamlNode node)
        {
            var seq = Sequence(node, "'slices'");
            if (seq.Children.Count == 0) throw Error(node, "'slices' is empty", "list at least one slice");
            var list = new List<OutputSliceDefinition>();
            foreach (var item in seq.Children)
            {
                var m = Mapping(item, "an entry of 'slices'");
                CheckKeys(m, SliceKeys, "key in a slice");
                var sourcesNode = Get(m, "sources") ?? throw Error(item, "a slice has no 'sources'", "write 'sources: [{model: ..., layer_range: [0, 8]}]'");
                var sources = new List<SliceSourceDefinition>();
                foreach (var s in Sequence(sourcesNode, "'sources'").Children)
                {
                    var sm = Mapping(s, "a slice source");
                    CheckKeys(sm, SourceKeys, "key in a slice source");
                    var model = Get(sm, "model") ?? throw Error(s, "a slice source has no 'model'");
                    var rangeNode = Get(sm, "layer_range") ?? throw Error(s, "a slice source has no 'layer_range'", "write 'layer_range: [start, end]' (end exclusive)");
                    var range = Sequence(rangeNode, "'layer_range'");
                    if (range.Children.Count != 2)
                        throw Error(rangeNode, $"'layer_range' has {range.Children.Count} entries", "write exactly two numbers: [start, end] (end exclusive)");
                    int a = Int(range.Children[0], "layer_range start"), b = Int(range.Children[1], "layer_range end");
                    if (a < 0 || b < a)
                        throw Error(rangeNode, $"layer_range [{a}, {b}] is not a valid range", "need 0 <= start <= end (end exclusive)");
                    sources.Add(new SliceSourceDefinition(Model(model, "model"), a, b,
                        Get(sm, "parameters") is { } p && !IsNull(p) ? Parameters(p) : ParameterSet.Empty, Loc(s)));
                }
                if (sources.Count == 0) throw Error(sourcesNode, "a slice has no sources");
                list.Add(new OutputSliceDefinition(sources,
                    Get(m, "base_model") is { } bm && !IsNull(bm) ? Model(bm, "base_model") : null,
                    Get(m, "parameters") is { } sp && !IsNull(sp) ? Parameters(sp) : ParameterSet.Empty,
                    Get(m, "residual_weight") is { } rw && !IsNull(rw) ? Number(rw, "residual_weight") : null,
                    Loc(item)));
            }
            return list;
        }

        private TokenizerDefinition Tokenizer(YamlNode node)
        {
            var m = Mapping(node, "'tokenizer'");
            CheckKeys(m, TokenizerKeys, "key in 'tokenizer'");
            string source = "union";
            ModelReference? sourceModel = null;
            if (Get(m, "source") is { } s && !IsNull(s))
            {
                var text = String(s, "tokenizer source");
                source = SourceName(text);
                sourceModel = SourceModel(text, s);
            }
            var tokens = new Dictionary<string, TokenEmbeddingSettings>(StringComparer.Ordinal);
            if (Get(m, "tokens") is { } tn && !IsNull(tn))
            {
                foreach (var (k, v) in Mapping(tn, "'tokens'").Children)
                {
                    var token = (k as YamlScalarNode)?.Value ?? throw Error(k, "a token must be a plain string");
                    var tm = Mapping(v, $"the settings of token '{token}'");
                    CheckKeys(tm, TokenKeys, $"key in the settings of token '{token}'");
                    TokenEmbeddingSource? src = null;
                    if (Get(tm, "source") is { } ts && !IsNull(ts)) src = TokenSource(ts);
                    bool force = Get(tm, "force") is { } f && !IsNull(f) && Bool(f, "force");
                    tokens[token] = new TokenEmbeddingSettings(src, force, Loc(v));
                }
            }
            int? pad = null;
            if (Get(m, "pad_to_multiple_of") is { } pn && !IsNull(pn))
            {
                pad = Int(pn, "pad_to_multiple_of");
                if (pad <= 0) throw Error(pn, $"pad_to_multiple_of must be positive, got {pad}");
            }
            return new TokenizerDefinition(source, sourceModel, tokens, pad, Loc(node));
        }

        private TokenEmbeddingSource TokenSource(YamlNode node)
        {
            if (node is YamlScalarNode) return new ModelEmbeddingSource(Model(node, "token source"));
            var m = Mapping(node, "a token source");
            var kindNode = Get(m, "kind") ?? throw Error(node, "a token source mapping needs 'kind' (model_token or zero)");
            var kind = String(kindNode, "kind");
            switch (kind)
            {
                case "zero":
                    CheckKeys(m, ["kind"], "key in a zero token source");
                    return new ZeroEmbeddingSource();
                case "model_token":
                    CheckKeys(m, ["kind", "model", "token", "token_id"], "key in a model_token source");
                    var model = Get(m, "model") ?? throw Error(node, "a model_token source needs 'model'");
                    var token = Get(m, "token") is { } t && !IsNull(t) ? String(t, "token") : null;
                    int? id = Get(m, "token_id") is { } i && !IsNull(i) ? Int(i, "token_id") : null;
                    if ((token is null) == (id is null)) throw Error(node, "a model_token source needs exactly one of 'token' and 'token_id'");
                    return new ModelTokenEmbeddingSource(Model(model, "model"), token, id);
                default:
                    throw Error(kindNode, $"unknown token source kind '{kind}'", "use 'model_token' or 'zero'");
            }
        }

        private static string SourceName(string text) => text is "union" or "base" ? text : "model";

        private ModelReference? SourceModel(string text, YamlNode node) => text is "union" or "base" ? null : new ModelReference(text, Loc(node));

        // ---- parameters ----

        private ParameterSet Parameters(YamlNode node)
        {
            var m = Mapping(node, "'parameters'");
            var items = new List<KeyValuePair<string, ParameterSetting>>();
            foreach (var (k, v) in m.Children)
            {
                var name = (k as YamlScalarNode)?.Value ?? throw Error(k, "a parameter name must be a plain name");
                if (IsNull(v)) throw Error(v, $"parameter '{name}' has no value", "give a number, a list (gradient) or a list of {filter, value}; or remove the line");
                items.Add(new(name, Setting(v)));
            }
            return new ParameterSet(items);
        }

        private ParameterSetting Setting(YamlNode node)
        {
            switch (node)
            {
                case YamlScalarNode s:
                    return new ScalarSetting(Scalar(s), Loc(node));
                case YamlMappingNode m:
                    return new ConditionalSetting([Condition(m)], Loc(node));
                case YamlSequenceNode seq:
                    if (seq.Children.Count == 0) throw Error(node, "empty list as a parameter value", "give at least one value");
                    if (seq.Children.All(c => c is YamlMappingNode))
                        return new ConditionalSetting(seq.Children.Select(c => Condition((YamlMappingNode)c)).ToList(), Loc(node));
                    if (seq.Children.All(c => c is YamlScalarNode))
                    {
                        var values = seq.Children.Select(c => Scalar((YamlScalarNode)c)).ToList();
                        if (values.All(v => v.Kind == ParameterKind.Number))
                            return new GradientSetting(values.Select(v => v.NumberValue).ToList(), Loc(node));
                        return new StepSetting(values, Loc(node));
                    }
                    throw Error(node, "a parameter list mixes values and {filter, value} entries",
                        "use either a gradient like [0, 0.5, 1] or a list of {filter: ..., value: ...}");
                default:
                    throw Error(node, "unsupported parameter value");
            }
        }

        private ParameterCondition Condition(YamlMappingNode m)
        {
            CheckKeys(m, ConditionKeys, "key in a {filter, value} condition");
            var value = Get(m, "value") ?? throw Error(m, "a condition has no 'value'", "write '- filter: self_attn\\n  value: 0.5'");
            if (IsNull(value)) throw Error(value, "a condition's 'value' is empty");
            string? filter = Get(m, "filter") is { } f && !IsNull(f) ? String(f, "filter") : null;
            return new ParameterCondition(filter, Setting(value), Loc(m));
        }

        private ParameterScalar Scalar(YamlScalarNode s)
        {
            var v = s.Value ?? "";
            if (s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
                return ParameterScalar.String(v);
            switch (v)
            {
                case "true" or "True" or "TRUE" or "yes" or "Yes" or "YES" or "on" or "On" or "ON":
                    return ParameterScalar.Bool(true);
                case "false" or "False" or "FALSE" or "no" or "No" or "NO" or "off" or "Off" or "OFF":
                    return ParameterScalar.Bool(false);
                case "~" or "null" or "Null" or "NULL" or "":
                    throw Error(s, "empty (null) value where a parameter value is expected");
            }
            if (TryNumber(v, out var d)) return ParameterScalar.Number(d);
            return ParameterScalar.String(v);
        }

        internal static bool TryNumber(string v, out double d)
        {
            var t = v.Replace("_", "", StringComparison.Ordinal);
            switch (t)
            {
                case ".inf" or ".Inf" or ".INF" or "+.inf": d = double.PositiveInfinity; return true;
                case "-.inf" or "-.Inf" or "-.INF": d = double.NegativeInfinity; return true;
                case ".nan" or ".NaN" or ".NAN": d = double.NaN; return true;
            }
            if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && long.TryParse(t[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var hex))
            {
                d = hex;
                return true;
            }
            return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out d);
        }

        // ---- typed leaves ----

        private ModelReference Model(YamlNode node, string what)
        {
            if (node is YamlMappingNode m)
            {
                // pydantic's ModelReference form: {model: path | {path, revision}, lora: ...}.
                CheckKeys(m, ["model", "lora", "override_architecture"], $"key in '{what}'");
                if (Get(m, "lora") is { } lora && !IsNull(lora))
                    throw Error(lora, "LoRA model references are not supported yet", "merge the adapter into its base model first and reference the merged folder");
                var inner = Get(m, "model") ?? throw Error(node, $"'{what}' mapping has no 'model'");
                if (inner is YamlMappingNode im)
                {
                    CheckKeys(im, ["path", "revision"], "key in a model path");
                    var p = String(Get(im, "path") ?? throw Error(inner, "a model path mapping has no 'path'"), "path");
                    var rev = Get(im, "revision") is { } r && !IsNull(r) ? String(r, "revision") : null;
                    return new ModelReference(rev is null ? p : $"{p}@{rev}", Loc(inner));
                }
                return Model(inner, what);
            }
            var text = String(node, what);
            if (text.Length == 0) throw Error(node, $"'{what}' is empty", "give a model folder or a Hugging Face id");
            return new ModelReference(text, Loc(node));
        }

        private DType DTypeOf(YamlNode node, string what)
        {
            var s = String(node, what);
            var d = DTypes.ParseUserName(s);
            if (d is null || !d.Value.IsFloat() || d is DType.F8E4M3 or DType.F8E5M2)
                throw Error(node, $"unknown {what} '{s}'", "use float32, bfloat16 or float16");
            return d.Value;
        }

        private string String(YamlNode node, string what)
        {
            if (node is not YamlScalarNode s || s.Value is null)
                throw Error(node, $"'{what}' must be a single value, found {Describe(node)}");
            return s.Value;
        }

        private double Number(YamlNode node, string what)
        {
            var v = String(node, what);
            if (!TryNumber(v, out var d)) throw Error(node, $"'{what}' must be a number, found '{v}'");
            return d;
        }

        private int Int(YamlNode node, string what)
        {
            var d = Number(node, what);
            if (d != Math.Floor(d) || Math.Abs(d) > int.MaxValue) throw Error(node, $"'{what}' must be a whole number, found {d.ToString(CultureInfo.InvariantCulture)}");
            return (int)d;
        }

        private bool Bool(YamlNode node, string what)
        {
            var s = Scalar(node as YamlScalarNode ?? throw Error(node, $"'{what}' must be true or false"));
            return s.Kind switch
            {
                ParameterKind.Bool => s.BoolValue,
                ParameterKind.Number when s.NumberValue is 0 or 1 => s.NumberValue == 1,
                _ => throw Error(node, $"'{what}' must be true or false, found '{s}'"),
            };
        }

        private YamlMappingNode Mapping(YamlNode node, string what) =>
            node as YamlMappingNode ?? throw Error(node, $"{what} must be a mapping of keys to values, found {Describe(node)}");

        private YamlSequenceNode Sequence(YamlNode node, string what) =>
            node as YamlSequenceNode ?? throw Error(node, $"{what} must be a list, found {Describe(node)}");

        private static string Describe(YamlNode node) => node switch
        {
            YamlScalarNode s => $"'{s.Value}'",
            YamlSequenceNode => "a list",
            YamlMappingNode => "a mapping",
            _ => "an unsupported node",
        };

        private static bool IsNull(YamlNode node) =>
            node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

        private static YamlNode? Get(YamlMappingNode map, string key)
        {
            foreach (var (k, v) in map.Children)
                if (k is YamlScalarNode { Value: var name } && name == key) return v;
            return null;
        }

        private void CheckKeys(YamlMappingNode map, IReadOnlyList<string> allowed, string what)
        {
            foreach (var k in map.Children.Keys)
            {
                if (k is not YamlScalarNode { Value: { } name })
                    throw Error(k, $"a {what} must be a plain name");
                if (allowed.Contains(name)) continue;
                var close = allowed.MinBy(a => Distance(a, name))!;
                var hint = Distance(close, name) <= Math.Max(2, name.Length / 3)
                    ? $"did you mean '{close}'?"
                    : $"allowed here: {string.Join(", ", allowed)}";
                throw Error(k, $"unknown {what} '{name}'", hint);
            }
        }
    }

    /// <summary>Levenshtein distance (for "did you mean" hints).</summary>
    internal static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
