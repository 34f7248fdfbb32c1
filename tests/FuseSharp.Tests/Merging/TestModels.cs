using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Tests.Merging;

/// <summary>Temporary folders, tiny model folders and in-memory tensors for the merge tests.</summary>
internal static class TestModels
{
    public static string FixtureDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "merge");

    /// <summary>A new empty temporary folder (deleted by the caller or left in /tmp).</summary>
    public static string TempDir(string name)
    {
        var d = Path.Combine(Path.GetTempPath(), "fusesharp-merge-tests", $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Writes a model folder with <paramref name="tensors"/> (F32 unless given) and a Llama-like config.json.</summary>
    public static string WriteModel(string folder, IReadOnlyDictionary<string, (float[] Values, long[] Shape)> tensors, DType dtype = DType.F32,
        Action<JsonObject>? editConfig = null)
    {
        Directory.CreateDirectory(folder);
        var specs = tensors.Select(t => new TensorSpec(t.Key, dtype, new Shape(t.Value.Shape))).ToList();
        using (var w = SafetensorsWriter.Create(Path.Combine(folder, "model.safetensors"), specs))
        {
            foreach (var (name, (values, _)) in tensors) w.WriteSingle(name, values);
            w.Commit();
        }
        int layers = tensors.Keys.Select(TensorNames.ParseLayer).Where(l => l is not null).Select(l => l!.Value.Index + 1).DefaultIfEmpty(0).Max();
        var cfg = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["num_hidden_layers"] = layers,
            ["hidden_size"] = 4,
            ["vocab_size"] = tensors.TryGetValue("model.embed_tokens.weight", out var e) ? (int)e.Shape[0] : 8,
            ["torch_dtype"] = dtype.TorchName(),
        };
        editConfig?.Invoke(cfg);
        File.WriteAllText(Path.Combine(folder, "config.json"), cfg.ToJsonString());
        return folder;
    }

    /// <summary>A small random "Llama" with 2 layers: embed [vocab,4], per layer q_proj [4,4], mlp.up_proj [6,4], norm [4]; final norm, lm_head [vocab,4].</summary>
    public static Dictionary<string, (float[] Values, long[] Shape)> RandomLlama(int seed, Dictionary<string, (float[] Values, long[] Shape)>? near = null, float scale = 0.1f,
        int vocab = 8)
    {
        var rng = new Random(seed);
        var shapes = new List<(string, long[])> { ("model.embed_tokens.weight", [vocab, 4]) };
        for (int l = 0; l < 2; l++)
        {
            shapes.Add(($"model.layers.{l}.self_attn.q_proj.weight", [4, 4]));
            shapes.Add(($"model.layers.{l}.mlp.up_proj.weight", [6, 4]));
            shapes.Add(($"model.layers.{l}.input_layernorm.weight", [4]));
        }
        shapes.Add(("model.norm.weight", [4]));
        shapes.Add(("lm_head.weight", [vocab, 4]));
        var result = new Dictionary<string, (float[], long[])>();
        foreach (var (name, shape) in shapes)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var v = new float[n];
            for (int i = 0; i < n; i++)
                v[i] = near is null ? (float)(rng.NextDouble() * 2 - 1) : near[name].Values[i] + scale * (float)(rng.NextDouble() * 2 - 1);
            result[name] = (v, shape);
        }
        return result;
    }

    /// <summary>
    /// Writes a WordLevel tokenizer.json (white-space split) with <paramref name="vocab"/> at ids 0.. (entries like
    /// <c>&lt;s&gt;</c> are also special added tokens) and <paramref name="extraAdded"/> added tokens at their own ids, plus a
    /// tokenizer_config.json naming the EOS token.
    /// </summary>
    public static void WriteWordLevelTokenizer(string folder, IReadOnlyList<string> vocab, params (int Id, string Content, bool Special)[] extraAdded)
    {
        var added = new JsonArray();
        var v = new JsonObject();
        for (int i = 0; i < vocab.Count; i++)
        {
            v[vocab[i]] = i;
            if (vocab[i].StartsWith('<') && vocab[i].EndsWith('>')) added.Add(AddedJson(i, vocab[i], true));
        }
        foreach (var (id, content, special) in extraAdded) added.Add(AddedJson(id, content, special));
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "WhitespaceSplit" },
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = v, ["unk_token"] = "<unk>" },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\"}");
    }

    private static JsonObject AddedJson(int id, string content, bool special) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = !special, ["special"] = special,
    };

    /// <summary>Plans and runs the merge <paramref name="yaml"/> into <paramref name="output"/>, then reads every output tensor as F32.</summary>
    public static Dictionary<string, (float[] Values, long[] Shape)> Merge(string yaml, string output)
    {
        using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml), new MergeOptions())) MergeExecutor.Run(plan, output);
        return Read(output);
    }

    /// <summary>Reads every tensor of a model folder or file as F32.</summary>
    public static Dictionary<string, (float[] Values, long[] Shape)> Read(string path)
    {
        using var m = SafetensorsModel.Open(path);
        return m.Tensors.ToDictionary(t => t.Name, t => (m.ReadSingle(t.Name), t.Shape.ToArray()));
    }
}

/// <summary>An in-memory tensor source (for method tests without files).</summary>
internal sealed class ArraySource(float[] values, Shape shape, string name = "array") : TensorSource(shape)
{
    public override void Read(long start, Span<float> destination) => values.AsSpan((int)start, destination.Length).CopyTo(destination);

    public override long StoredBytes => values.Length * 4L;

    public override string Describe => name;
}

/// <summary>A sink that keeps outputs in memory.</summary>
internal sealed class MemorySink : ITensorSink
{
    private readonly Dictionary<string, float[]> _tensors = [];

    public float[] this[string name] => _tensors[name];

    public void Allocate(string name, long count) => _tensors[name] = new float[count];

    public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset) => values.CopyTo(_tensors[name].AsSpan((int)elementOffset));

    public void WriteBytes(string name, ReadOnlySpan<byte> bytes, long byteOffset) =>
        bytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_tensors[name].AsSpan())[(int)byteOffset..]);
}
