using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>
/// Arenas to and from safetensors: every view written under its name (with an optional prefix, e.g.
/// <c>exp_avg.</c> for optimizer moments) in the requested dtype, and read back with its shape checked.
/// </summary>
public static class ArenaFiles
{
    /// <summary>transformers' default <c>max_shard_size</c> ("5GB", decimal).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>
    /// Writes <paramref name="arena"/> into <paramref name="folder"/> as <c>{filePrefix}.safetensors</c>, or as shards
    /// <c>{filePrefix}-0000k-of-0000n.safetensors</c> plus an index above <paramref name="maxShardBytes"/>.
    /// </summary>
    /// <exception cref="SafetensorsException">The files cannot be written (disk full, permissions).</exception>
    public static void Save(TensorArena arena, string folder, string filePrefix, DType dtype, string namePrefix = "",
        long maxShardBytes = DefaultMaxShardBytes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(arena);
        var specs = arena.Entries.Select(e => new TensorSpec(namePrefix + e.Name, dtype, e.Shape)).ToList();
        using var writer = ShardedSafetensorsWriter.Create(folder, specs, maxShardBytes, metadata ?? SafetensorsWriter.DefaultMetadata, filePrefix);
        for (int i = 0; i < arena.Count; i++)
        {
            var e = arena.Entries[i];
            writer.WriteSingle(namePrefix + e.Name, arena.Span(i));
        }
        writer.Commit();
    }

    /// <summary>Reads every tensor of <paramref name="arena"/> from a store of tensors (converted to F32).</summary>
    /// <param name="arena">Destination.</param>
    /// <param name="lookup">The stored entry of a name, or null.</param>
    /// <param name="read">Reads a stored tensor as F32 into a span.</param>
    /// <param name="sourceName">The file or folder, for messages.</param>
    /// <param name="namePrefix">Prefix of the stored names.</param>
    /// <exception cref="TrainingException">A tensor is missing or has another shape.</exception>
    public static void Load(TensorArena arena, Func<string, TensorEntry?> lookup, Action<string, Span<float>> read, string sourceName, string namePrefix = "")
    {
        ArgumentNullException.ThrowIfNull(arena);
        ArgumentNullException.ThrowIfNull(lookup);
        ArgumentNullException.ThrowIfNull(read);
        for (int i = 0; i < arena.Count; i++)
        {
            var e = arena.Entries[i];
            var name = namePrefix + e.Name;
            var stored = lookup(name) ?? throw new TrainingException($"{sourceName}: tensor '{name}' is missing", "the checkpoint does not belong to this model or this run");
            if (stored.Shape != e.Shape)
                throw new TrainingException($"{sourceName}: tensor '{name}' has shape {stored.Shape}, expected {e.Shape}", "the checkpoint does not belong to this model or this run");
            read(name, arena.Span(i));
        }
    }

    /// <summary><see cref="Load(TensorArena, Func{string, TensorEntry?}, Action{string, Span{float}}, string, string)"/> from one safetensors file.</summary>
    public static void Load(TensorArena arena, SafetensorsFile file, string namePrefix = "")
    {
        ArgumentNullException.ThrowIfNull(file);
        Load(arena, n => file.TryGetEntry(n, out var e) ? e : null, file.ReadSingle, file.FilePath, namePrefix);
    }

    /// <summary><see cref="Load(TensorArena, Func{string, TensorEntry?}, Action{string, Span{float}}, string, string)"/> from a (sharded) model folder.</summary>
    public static void Load(TensorArena arena, SafetensorsModel model, string namePrefix = "")
    {
        ArgumentNullException.ThrowIfNull(model);
        Load(arena, n => model.TryGetEntry(n, out var e) ? e : null, model.ReadSingle, model.Path, namePrefix);
    }
}

/// <summary>Writes a loadable Hugging Face model folder from a trainable model's parameters.</summary>
public static class ModelSaver
{
    /// <summary>
    /// Writes <c>config.json</c> (with <c>torch_dtype</c> set to <paramref name="dtype"/>), the weights
    /// (<c>model.safetensors</c>, sharded above <paramref name="maxShardBytes"/>) and the non-weight files of
    /// <paramref name="sourceFolder"/> (tokenizer, generation config, ...) into <paramref name="folder"/>.
    /// </summary>
    public static void Save(ITrainableModel model, string folder, DType dtype, string? sourceFolder, long maxShardBytes = ArenaFiles.DefaultMaxShardBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(folder);
        if (sourceFolder is not null && Directory.Exists(sourceFolder))
            // A source that is itself a training output holds that run's log and loss curve: they are not the model's.
            ModelFolder.CopyNonWeightFiles(sourceFolder, folder, skip: n => n is "config.json" or "README.md" or TrainingLog.FileName or LossCurve.FileName
                || n.StartsWith("trainer_state", StringComparison.Ordinal));
        var config = model.Config.Clone();
        config.Raw["torch_dtype"] = TorchDtypeName(dtype);
        ArenaFiles.Save(model.Parameters, folder, "model", dtype, maxShardBytes: maxShardBytes);
        config.Save(Path.Combine(folder, "config.json"));
    }

    /// <summary>The <c>torch_dtype</c> string of a weight dtype.</summary>
    public static string TorchDtypeName(DType dtype) => dtype switch
    {
        DType.F32 => "float32",
        DType.BF16 => "bfloat16",
        DType.F16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "models are saved as float32, bfloat16 or float16"),
    };
}
