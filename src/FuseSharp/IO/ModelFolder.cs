using System.Text.Json.Nodes;

namespace FuseSharp.IO;

/// <summary>
/// A Hugging Face model folder: <c>config.json</c>, weights (safetensors, opened lazily, headers only), tokenizer
/// files and <c>generation_config.json</c>.
/// </summary>
public sealed class ModelFolder : IDisposable
{
    /// <summary>Files that make up a tokenizer, in any of the formats FuseSharp reads.</summary>
    public static readonly IReadOnlyList<string> TokenizerFileNames =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json", "merges.txt", "vocab.txt",
        "tokenizer.tiktoken", "chat_template.jinja", "chat_template.json",
    ];

    private SafetensorsModel? _weights;

    private ModelFolder(string path, ModelConfig? config, JsonObject? generationConfig)
    {
        Path = path;
        Config = config;
        GenerationConfig = generationConfig;
    }

    public string Path { get; }

    /// <summary>config.json, or null when the folder has none (weights only).</summary>
    public ModelConfig? Config { get; }

    /// <summary>generation_config.json, or null.</summary>
    public JsonObject? GenerationConfig { get; }

    /// <summary>The tokenizer files present, as full paths.</summary>
    public IReadOnlyList<string> TokenizerFiles =>
        TokenizerFileNames.Select(n => System.IO.Path.Combine(Path, n)).Where(File.Exists).ToList();

    /// <summary>The weights (opened on first use; headers only).</summary>
    public SafetensorsModel Weights => _weights ??= SafetensorsModel.Open(Path);

    public bool HasWeights => SafetensorsModel.Exists(Path);

    /// <summary>Opens a folder. <paramref name="requireConfig"/>: fail when config.json is missing.</summary>
    /// <exception cref="FuseSharpException">The folder does not exist or a JSON file in it is malformed.</exception>
    public static ModelFolder Open(string path, bool requireConfig = true)
    {
        if (!Directory.Exists(path))
            throw new FuseSharpException($"{path}: model folder not found", "give the path of a folder with config.json and model.safetensors");
        var configPath = System.IO.Path.Combine(path, "config.json");
        ModelConfig? config = null;
        if (File.Exists(configPath)) config = ModelConfig.Load(configPath);
        else if (requireConfig) throw new ModelConfigException(configPath, "not found", "a model folder needs a config.json");
        JsonObject? gen = null;
        var genPath = System.IO.Path.Combine(path, "generation_config.json");
        if (File.Exists(genPath))
        {
            try
            {
                gen = JsonNode.Parse(File.ReadAllText(genPath)) as JsonObject ?? throw new ModelConfigException(genPath, "is not a JSON object");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new ModelConfigException(genPath, $"is not valid JSON ({e.Message})", inner: e);
            }
        }
        return new ModelFolder(path, config, gen);
    }

    /// <summary>True for files that hold weights (never copied from a donor folder).</summary>
    public static bool IsWeightFile(string fileName)
    {
        var n = fileName.ToLowerInvariant();
        return n.EndsWith(".safetensors", StringComparison.Ordinal) || n.EndsWith(".bin", StringComparison.Ordinal)
            || n.EndsWith(".pt", StringComparison.Ordinal) || n.EndsWith(".pth", StringComparison.Ordinal)
            || n.EndsWith(".gguf", StringComparison.Ordinal) || n.EndsWith(".ckpt", StringComparison.Ordinal)
            || n.EndsWith(".msgpack", StringComparison.Ordinal) || n.EndsWith(".h5", StringComparison.Ordinal)
            || n == SafetensorsModel.IndexFileName || n == "pytorch_model.bin.index.json";
    }

    /// <summary>
    /// Copies the top-level non-weight files of <paramref name="donor"/> (config, tokenizer, generation config,
    /// README, ...) into <paramref name="output"/>, skipping names for which <paramref name="skip"/> is true.
    /// </summary>
    public static IReadOnlyList<string> CopyNonWeightFiles(string donor, string output, Func<string, bool>? skip = null)
    {
        var copied = new List<string>();
        Directory.CreateDirectory(output);
        foreach (var f in Directory.EnumerateFiles(donor).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(f);
            if (IsWeightFile(name) || name.StartsWith('.') || (skip?.Invoke(name) ?? false)) continue;
            File.Copy(f, System.IO.Path.Combine(output, name), overwrite: true);
            copied.Add(name);
        }
        return copied;
    }

    public void Dispose() => _weights?.Dispose();
}
