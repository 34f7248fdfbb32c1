using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models;

/// <summary>
/// Typed reads of config.json for the architecture files: each field may go by several names (the first present
/// wins), a missing required field or a value of the wrong type is a <see cref="ModelConfigException"/> naming the
/// field and the file. Reads nested objects (<c>attn_config</c>) through <see cref="Section"/>.
/// </summary>
public sealed class ConfigReader
{
    private readonly JsonObject _obj;
    private readonly string _prefix;

    public ConfigReader(ModelConfig config) : this(config.Raw, config.Path, "") { ArgumentNullException.ThrowIfNull(config); }

    private ConfigReader(JsonObject obj, string path, string prefix)
    {
        _obj = obj;
        Path = path;
        _prefix = prefix;
    }

    /// <summary>The file, for messages.</summary>
    public string Path { get; }

    /// <summary>The raw JSON (for fields not covered here).</summary>
    public JsonObject Raw => _obj;

    /// <summary>A nested object (e.g. <c>attn_config</c>); an empty one when absent or null.</summary>
    public ConfigReader Section(string name) =>
        new(_obj[name] as JsonObject ?? [], Path, _prefix + name + ".");

    public bool Has(string name) => _obj[name] is not null;

    public int RequireInt(params string[] names) =>
        Int(names) ?? throw Missing(names);

    public int Int(string name, int fallback) => Int([name]) ?? fallback;

    public int? Int(params string[] names)
    {
        foreach (var n in names)
        {
            var node = _obj[n];
            if (node is null) continue;
            if (node is JsonValue v)
            {
                if (v.TryGetValue<int>(out var i)) return i;
                if (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
            }
            throw Wrong(n, node, "an integer");
        }
        return null;
    }

    public double RequireDouble(params string[] names) => Double(names) ?? throw Missing(names);

    public double Double(string name, double fallback) => Double([name]) ?? fallback;

    public double? Double(params string[] names)
    {
        foreach (var n in names)
        {
            var node = _obj[n];
            if (node is null) continue;
            if (node is JsonValue v && v.TryGetValue<double>(out var d)) return d;
            throw Wrong(n, node, "a number");
        }
        return null;
    }

    public bool Bool(string name, bool fallback)
    {
        var node = _obj[name];
        if (node is null) return fallback;
        if (node is JsonValue v && v.TryGetValue<bool>(out var b)) return b;
        throw Wrong(name, node, "true or false");
    }

    public string? String(params string[] names)
    {
        foreach (var n in names)
        {
            var node = _obj[n];
            if (node is null) continue;
            if (node is JsonValue v && v.TryGetValue<string>(out var s)) return s;
            throw Wrong(n, node, "a string");
        }
        return null;
    }

    /// <summary>An id or a list of ids (<c>eos_token_id</c> may be either); empty when absent.</summary>
    public IReadOnlyList<int> IntList(string name)
    {
        var node = _obj[name];
        if (node is null) return [];
        if (node is JsonArray a)
            return a.Select((x, i) => x is JsonValue v && v.TryGetValue<int>(out var id) ? id : throw Wrong($"{name}[{i}]", x, "an integer")).ToList();
        return [Int(name)!.Value];
    }

    /// <summary>A list of numbers (LongRoPE factors); null when absent.</summary>
    public IReadOnlyList<double>? DoubleList(string name)
    {
        var node = _obj[name];
        if (node is null) return null;
        if (node is not JsonArray a) throw Wrong(name, node, "a list of numbers");
        return a.Select((x, i) => x is JsonValue v && v.TryGetValue<double>(out var d) ? d : throw Wrong($"{name}[{i}]", x, "a number")).ToList();
    }

    /// <summary>An error about a field's value (e.g. an unsupported option).</summary>
    public ModelConfigException Invalid(string name, string problem, string? hint = null) =>
        new(Path, $"'{_prefix}{name}' {problem}", hint);

    /// <summary>
    /// Reads <c>rope_scaling</c> (<c>type</c> or <c>rope_type</c>: linear, dynamic, llama3, yarn, longrope/su, default);
    /// null when absent, null or "default".
    /// </summary>
    public RopeScaling? RopeScaling(string name = "rope_scaling")
    {
        if (_obj[name] is null) return null;
        if (_obj[name] is not JsonObject) throw Wrong(name, _obj[name]!, "an object");
        var s = Section(name);
        var type = s.String("rope_type", "type") ?? "default";
        RopeScalingKind kind = type switch
        {
            "default" => RopeScalingKind.None,
            "linear" => RopeScalingKind.Linear,
            "dynamic" => RopeScalingKind.Dynamic,
            "llama3" => RopeScalingKind.Llama3,
            "yarn" => RopeScalingKind.Yarn,
            "longrope" or "su" => RopeScalingKind.LongRope,
            _ => throw Invalid(name + ".rope_type", $"is '{type}', which FuseSharp does not implement",
                "supported rope scaling types: default, linear, dynamic, llama3, yarn, longrope (su)"),
        };
        if (kind == RopeScalingKind.None) return null;
        double factor = kind == RopeScalingKind.LongRope ? s.Double("factor", 1) : s.RequireDouble("factor");
        if (factor <= 0) throw Invalid(name + ".factor", $"is {factor.ToString(CultureInfo.InvariantCulture)}; it must be positive");
        return new RopeScaling(kind, factor)
        {
            LowFreqFactor = s.Double("low_freq_factor", 1),
            HighFreqFactor = s.Double("high_freq_factor", 4),
            OriginalMaxPositions = s.Int("original_max_position_embeddings") ?? Int("original_max_position_embeddings") ?? 0,
            BetaFast = s.Double("beta_fast", 32),
            BetaSlow = s.Double("beta_slow", 1),
            Truncate = s.Bool("truncate", true),
            AttentionFactor = s.Double("attention_factor"),
            Mscale = s.Double("mscale"),
            MscaleAllDim = s.Double("mscale_all_dim"),
            ShortFactor = s.DoubleList("short_factor"),
            LongFactor = s.DoubleList("long_factor"),
        };
    }

    private ModelConfigException Missing(string[] names) =>
        new(Path, $"missing required field '{_prefix}{names[0]}'" + (names.Length > 1 ? $" (or {string.Join(", ", names.Skip(1).Select(n => "'" + _prefix + n + "'"))})" : ""),
            "the config.json is incomplete for this architecture; compare it with the original model's config");

    private ModelConfigException Wrong(string name, JsonNode? node, string expected) =>
        new(Path, $"field '{_prefix}{name}' is {node?.ToJsonString() ?? "null"}, expected {expected}");
}
