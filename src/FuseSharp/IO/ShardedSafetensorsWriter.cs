using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.IO;

/// <summary>
/// Writes a model's weights as one <c>model.safetensors</c>, or, when they exceed the shard budget, as
/// <c>model-0000k-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c> (the Hugging Face layout).
/// Tensors are assigned to shards in the declared order, a new shard starting when the next tensor would pass
/// the budget (a tensor larger than the budget gets a shard of its own). All shard files are written through
/// <see cref="SafetensorsWriter"/>, so data streams to its final place and nothing is renamed into place
/// before <see cref="Commit"/>.
/// </summary>
public sealed class ShardedSafetensorsWriter : IDisposable
{
    private readonly List<SafetensorsWriter> _shards = [];
    private readonly Dictionary<string, SafetensorsWriter> _route = new(StringComparer.Ordinal);
    private readonly string _indexPath;
    private bool _committed;

    private ShardedSafetensorsWriter(string folder, string indexPath)
    {
        Folder = folder;
        _indexPath = indexPath;
    }

    public string Folder { get; }

    /// <summary>The file names written, in order.</summary>
    public IReadOnlyList<string> ShardFiles => _shards.Select(s => Path.GetFileName(s.FilePath)).ToList();

    /// <summary>Splits <paramref name="specs"/> (in order) into shards of at most <paramref name="maxShardBytes"/> data bytes.</summary>
    public static IReadOnlyList<IReadOnlyList<TensorSpec>> PlanShards(IReadOnlyList<TensorSpec> specs, long maxShardBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var shards = new List<IReadOnlyList<TensorSpec>>();
        var current = new List<TensorSpec>();
        long bytes = 0;
        foreach (var s in specs)
        {
            if (current.Count > 0 && bytes + s.ByteLength > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                bytes = 0;
            }
            current.Add(s);
            bytes += s.ByteLength;
        }
        if (current.Count > 0 || shards.Count == 0) shards.Add(current);
        return shards;
    }

    /// <summary>File name of shard <paramref name="k"/> (0-based) of <paramref name="n"/>.</summary>
    public static string ShardName(string prefix, int k, int n) =>
        n == 1 ? $"{prefix}.safetensors" : string.Create(CultureInfo.InvariantCulture, $"{prefix}-{k + 1:D5}-of-{n:D5}.safetensors");

    /// <summary>Creates the shard files in <paramref name="folder"/> (which must exist).</summary>
    public static ShardedSafetensorsWriter Create(string folder, IReadOnlyList<TensorSpec> specs, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null, string prefix = "model")
    {
        var plan = PlanShards(specs, maxShardBytes);
        var w = new ShardedSafetensorsWriter(folder, Path.Combine(folder, $"{prefix}.safetensors.index.json"));
        try
        {
            for (int k = 0; k < plan.Count; k++)
            {
                var shard = SafetensorsWriter.Create(Path.Combine(folder, ShardName(prefix, k, plan.Count)), plan[k], metadata);
                w._shards.Add(shard);
                foreach (var s in plan[k]) w._route[s.Name] = shard;
            }
        }
        catch
        {
            w.Dispose();
            throw;
        }
        return w;
    }

    /// <summary>The writer of the shard that holds <paramref name="name"/>.</summary>
    public SafetensorsWriter ShardOf(string name) =>
        _route.TryGetValue(name, out var w) ? w : throw new SafetensorsException(SafetensorsErrorKind.MissingTensor, Folder, "was not declared when the writer was created", name);

    public void Write(string name, ReadOnlySpan<byte> bytes, long offsetInTensor = 0) => ShardOf(name).Write(name, bytes, offsetInTensor);

    public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset = 0) => ShardOf(name).WriteSingle(name, values, elementOffset);

    /// <summary>Commits every shard and, for more than one, writes the index (atomically).</summary>
    public void Commit()
    {
        foreach (var s in _shards) s.Commit();
        if (_shards.Count > 1)
        {
            var weightMap = new JsonObject();
            foreach (var (name, shard) in _route.OrderBy(p => p.Key, StringComparer.Ordinal))
                weightMap[name] = Path.GetFileName(shard.FilePath);
            var index = new JsonObject
            {
                ["metadata"] = new JsonObject { ["total_size"] = _shards.Sum(s => s.Layout.Sum(e => e.ByteLength)) },
                ["weight_map"] = weightMap,
            };
            AtomicFile.WriteAllText(_indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed) return;
        foreach (var s in _shards) s.Dispose();
    }
}
