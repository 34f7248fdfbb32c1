using System.Text.Json;
using FuseSharp.Tensors;

namespace FuseSharp.IO;

/// <summary>
/// The weights of a model as one set of named tensors, whether stored in one <c>model.safetensors</c>, in shards
/// listed by <c>model.safetensors.index.json</c>, or given as a single <c>.safetensors</c> file. Opening reads
/// headers only. Shard names in the index are checked to stay inside the folder.
/// </summary>
public sealed class SafetensorsModel : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;
    private readonly List<TensorEntry> _entries;

    private SafetensorsModel(string path, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner, List<TensorEntry> entries, string? indexPath)
    {
        Path = path;
        _files = files;
        _owner = owner;
        _entries = entries;
        IndexPath = indexPath;
    }

    /// <summary>The folder or file this was opened from.</summary>
    public string Path { get; }

    /// <summary>The index file, when the weights are sharded.</summary>
    public string? IndexPath { get; }

    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Every tensor, in file order (shards in index order).</summary>
    public IReadOnlyList<TensorEntry> Tensors => _entries;

    public long TotalBytes => _entries.Sum(e => e.ByteLength);

    public long ParameterCount => _entries.Sum(e => e.ElementCount);

    /// <summary>Metadata of the first file (what transformers reads: "format": "pt").</summary>
    public IReadOnlyDictionary<string, string> Metadata => _files.Count > 0 ? _files[0].Metadata : new Dictionary<string, string>();

    /// <summary>True if <paramref name="folder"/> holds safetensors weights this class can open.</summary>
    public static bool Exists(string folder) =>
        File.Exists(System.IO.Path.Combine(folder, IndexFileName)) || File.Exists(System.IO.Path.Combine(folder, SingleFileName));

    /// <summary>
    /// Opens a folder (its <c>model.safetensors.index.json</c>, else <c>model.safetensors</c>, as <c>from_pretrained</c>
    /// does: other <c>.safetensors</c> files in a folder, such as adapters or golden data, are not the model) or a file.
    /// </summary>
    /// <exception cref="SafetensorsException">Missing weights, a broken index, or an invalid shard.</exception>
    public static SafetensorsModel Open(string path)
    {
        if (File.Exists(path))
        {
            if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
            return OpenFiles(path, [path], null);
        }
        if (!Directory.Exists(path))
            throw new SafetensorsException(SafetensorsErrorKind.NoWeights, path, "no such file or folder");
        var index = System.IO.Path.Combine(path, IndexFileName);
        if (File.Exists(index)) return OpenIndex(index);
        var single = System.IO.Path.Combine(path, SingleFileName);
        if (File.Exists(single)) return OpenFiles(path, [single], null);
        var others = Directory.EnumerateFiles(path, "*.safetensors").Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var bins = Directory.EnumerateFiles(path, "*.bin").Concat(Directory.EnumerateFiles(path, "*.pt")).Any();
        throw new SafetensorsException(SafetensorsErrorKind.NoWeights, path, $"no {SingleFileName} or {IndexFileName}",
            hint: bins ? "this folder holds PyTorch .bin weights; convert them to safetensors first (transformers: model.save_pretrained(dir, safe_serialization=True))"
                : others.Count > 0 ? $"it has {string.Join(", ", others)}; pass that file's path to use it directly" : "give the folder of a Hugging Face model");
    }

    private static SafetensorsModel OpenIndex(string indexPath)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var weightMap = ReadIndex(indexPath, folder);
        var shards = weightMap.Values.Distinct(StringComparer.Ordinal).ToList();
        // Only tensors the index assigns to a shard belong to the model; each must be in the shard it names.
        var model = OpenFiles(folder, shards.Select(s => System.IO.Path.Combine(folder, s)).ToList(), indexPath,
            (name, file) => weightMap.TryGetValue(name, out var s) && file == System.IO.Path.Combine(folder, s));
        foreach (var (name, shard) in weightMap)
        {
            if (!model._owner.ContainsKey(name))
                throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"says tensor '{name}' is in '{shard}', but that shard has no such tensor",
                    hint: "the index and shards are from different checkpoints; download the model again");
        }
        return model;
    }

    /// <summary>Reads <c>weight_map</c> of an index, rejecting shard names that are absolute, escape the folder, or are missing.</summary>
    public static IReadOnlyDictionary<string, string> ReadIndex(string indexPath, string folder)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"not valid JSON ({e.Message})", inner: e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, "has no \"weight_map\" object");
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            var fullFolder = System.IO.Path.GetFullPath(folder);
            var checkedShards = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"weight_map entry for '{p.Name}' is not a file name");
                var shard = p.Value.GetString()!;
                if (checkedShards.Add(shard)) CheckShardName(shard, fullFolder, indexPath);
                if (!map.TryAdd(p.Name, shard))
                    throw new SafetensorsException(SafetensorsErrorKind.DuplicateTensor, indexPath, "appears twice in weight_map", p.Name);
            }
            if (map.Count == 0) throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, "weight_map is empty");
            return map;
        }
    }

    private static void CheckShardName(string shard, string fullFolder, string indexPath)
    {
        if (shard.Length == 0 || shard.Contains('\0') || System.IO.Path.IsPathRooted(shard) || shard.Split('/', '\\').Any(s => s == ".."))
            throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"shard name '{shard}' points outside the model folder",
                hint: "shard names must be plain file names inside the folder; this index may be hostile");
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(fullFolder, shard));
        if (!full.StartsWith(fullFolder + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"shard name '{shard}' points outside the model folder");
        if (!File.Exists(full))
            throw new SafetensorsException(SafetensorsErrorKind.InvalidIndex, indexPath, $"names shard '{shard}', which does not exist in {fullFolder}",
                hint: "the download is incomplete; fetch the missing shard");
    }

    private static SafetensorsModel OpenFiles(string path, IReadOnlyList<string> files, string? indexPath, Func<string, string, bool>? include = null)
    {
        var opened = new List<SafetensorsFile>();
        try
        {
            var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            var entries = new List<TensorEntry>();
            foreach (var f in files)
            {
                var sf = SafetensorsFile.Open(f);
                opened.Add(sf);
                foreach (var t in sf.Tensors)
                {
                    if (include is not null && !include(t.Name, f)) continue;
                    if (!owner.TryAdd(t.Name, sf))
                    {
                        throw new SafetensorsException(SafetensorsErrorKind.DuplicateTensor, f, $"also in {owner[t.Name].FilePath}", t.Name);
                    }
                    entries.Add(t);
                }
            }
            return new SafetensorsModel(path, opened, owner, entries, indexPath);
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _owner.ContainsKey(name);

    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        if (_owner.TryGetValue(name, out var f)) return f.TryGetEntry(name, out entry);
        entry = null!;
        return false;
    }

    /// <exception cref="SafetensorsException">No tensor of that name (the message lists close names).</exception>
    public TensorEntry GetEntry(string name) => FileOf(name).GetEntry(name);

    /// <summary>The file that holds <paramref name="name"/>.</summary>
    public SafetensorsFile FileOf(string name)
    {
        if (_owner.TryGetValue(name, out var f)) return f;
        var similar = _owner.Keys.Where(k => k.EndsWith(name.Split('.').Last(), StringComparison.Ordinal)).Take(3).ToList();
        throw new SafetensorsException(SafetensorsErrorKind.MissingTensor, Path, "not in this model", name,
            similar.Count > 0 ? $"tensors with a similar name: {string.Join(", ", similar)}" : null);
    }

    /// <summary>A zero-copy view of the tensor (valid while this model is open).</summary>
    public Tensor GetTensor(string name) => FileOf(name).GetTensor(name);

    /// <summary>The raw bytes of a tensor (zero-copy, under 2 GiB).</summary>
    public ReadOnlySpan<byte> GetBytes(string name) => FileOf(name).GetBytes(name);

    /// <summary>Reads a tensor converted to F32.</summary>
    public void ReadSingle(string name, Span<float> destination) => FileOf(name).ReadSingle(name, destination);

    /// <summary>A new F32 array with the tensor's values.</summary>
    public float[] ReadSingle(string name)
    {
        var e = GetEntry(name);
        var a = new float[checked((int)e.ElementCount)];
        ReadSingle(name, a);
        return a;
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
