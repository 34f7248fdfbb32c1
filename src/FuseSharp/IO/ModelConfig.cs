using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.IO;

/// <summary>Thrown for a config.json (or other JSON config) that is missing, malformed, or lacks a required field.</summary>
public sealed class ModelConfigException : FuseSharpException
{
    public ModelConfigException(string path, string problem, string? hint = null, Exception? inner = null)
        : base($"{path}: {problem}", hint, inner) => FilePath = path;

    public ModelConfigException() : base("invalid model config") { }

    public ModelConfigException(string message) : base(message) { }

    public ModelConfigException(string message, Exception inner) : base(message, inner) { }

    public string FilePath { get; } = "";
}

/// <summary>
/// A Hugging Face <c>config.json</c>. Every key is kept (<see cref="Raw"/>), so a folder written back has what it
/// was read with; the common fields have typed accessors, each accepting the names the model families use
/// (<c>hidden_size</c> / <c>n_embd</c> / <c>d_model</c>, ...).
/// </summary>
public sealed class ModelConfig
{
    public ModelConfig(JsonObject raw, string path = "config.json")
    {
        Raw = raw;
        Path = path;
    }

    /// <summary>All keys as read; edit freely, then <see cref="Save"/>.</summary>
    public JsonObject Raw { get; }

    /// <summary>Where it was read from (for messages).</summary>
    public string Path { get; }

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelConfigException(path, "not found", "a model folder needs a config.json");
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return node is JsonObject o ? new ModelConfig(o, path) : throw new ModelConfigException(path, "is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(path, $"is not valid JSON ({e.Message})", inner: e);
        }
    }

    public string? ModelType => GetString("model_type");

    public IReadOnlyList<string> Architectures =>
        Raw["architectures"] is JsonArray a ? a.Select(x => x?.GetValue<string>() ?? "").Where(s => s.Length > 0).ToList() : [];

    public int? HiddenSize => GetInt("hidden_size", "n_embd", "d_model");

    public int? NumHiddenLayers => GetInt("num_hidden_layers", "n_layer", "n_layers", "num_layers");

    public int? NumAttentionHeads => GetInt("num_attention_heads", "n_head", "n_heads");

    public int? NumKeyValueHeads => GetInt("num_key_value_heads", "num_kv_heads", "n_kv_heads");

    public int? IntermediateSize => GetInt("intermediate_size", "n_inner", "ffn_hidden_size");

    public int? VocabSize => GetInt("vocab_size", "padded_vocab_size");

    public int? MaxPositionEmbeddings => GetInt("max_position_embeddings", "n_positions", "max_seq_len", "n_ctx");

    public bool TieWordEmbeddings => GetBool("tie_word_embeddings") ?? false;

    public string? TorchDtype => GetString("torch_dtype") ?? GetString("dtype");

    public int? BosTokenId => GetInt("bos_token_id");

    public int? EosTokenId => GetInt("eos_token_id");

    /// <summary>The first of <paramref name="names"/> present, as a string.</summary>
    public string? GetString(params string[] names)
    {
        foreach (var n in names)
            if (Raw[n] is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        return null;
    }

    /// <summary>The first of <paramref name="names"/> present, as an int (a list gives its first element: some configs list several eos ids).</summary>
    public int? GetInt(params string[] names)
    {
        foreach (var n in names)
        {
            var node = Raw[n];
            if (node is JsonArray arr && arr.Count > 0) node = arr[0];
            if (node is JsonValue v)
            {
                if (v.TryGetValue<int>(out var i)) return i;
                if (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
            }
        }
        return null;
    }

    public double? GetDouble(params string[] names)
    {
        foreach (var n in names)
            if (Raw[n] is JsonValue v && v.TryGetValue<double>(out var d)) return d;
        return null;
    }

    public bool? GetBool(params string[] names)
    {
        foreach (var n in names)
            if (Raw[n] is JsonValue v && v.TryGetValue<bool>(out var b)) return b;
        return null;
    }

    /// <summary>A required int field; the message names the field and the file.</summary>
    public int RequireInt(params string[] names) =>
        GetInt(names) ?? throw new ModelConfigException(Path, $"missing required field '{names[0]}'", "the config.json is incomplete for this architecture");

    /// <summary>A deep copy (for writing a modified config).</summary>
    public ModelConfig Clone() => new((JsonObject)Raw.DeepClone(), Path);

    /// <summary>Writes the config as transformers does (indent 2, trailing newline), atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, Raw.ToJsonString(IndentedJson) + "\n");

    internal static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
