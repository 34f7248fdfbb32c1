using FuseSharp.IO;

namespace FuseSharp.Fusion.Store;

/// <summary>
/// Writes one shard of a store: the manifest (created, or checked against the one already there), then part files,
/// each written whole and renamed into place, so a killed run leaves only complete parts and resumes at the first
/// missing one. Parts may be written concurrently (one thread per part).
/// </summary>
public sealed class StoreWriter
{
    private StoreWriter(string folder, StoreManifest manifest, ShardSpec shard, IReadOnlyList<StorePart> parts)
    {
        Folder = folder;
        Manifest = manifest;
        Shard = shard;
        Parts = parts;
    }

    public string Folder { get; }

    public StoreManifest Manifest { get; }

    public ShardSpec Shard { get; }

    /// <summary>This shard's parts in row order; <see cref="StorePart.Done"/> marks those already written.</summary>
    public IReadOnlyList<StorePart> Parts { get; }

    /// <summary>The parts still to write.</summary>
    public IReadOnlyList<StorePart> Pending => Parts.Where(p => !p.Done).ToList();

    /// <summary>
    /// Opens <paramref name="folder"/> for writing shard <paramref name="shard"/>. An existing manifest must describe the
    /// same configuration (else nothing is touched, unless <paramref name="overwrite"/>: then the old manifest and all
    /// part files are deleted first). Finished parts of this shard are kept; leftover temporary files are removed.
    /// </summary>
    /// <exception cref="FusionException">A different configuration is already there, or a part file of it is foreign.</exception>
    public static StoreWriter Open(string folder, StoreManifest manifest, ShardSpec shard, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (manifest.Shards != shard.Count)
            throw new ArgumentException($"the manifest is cut into {manifest.Shards} shards, the shard spec says {shard.Count}", nameof(shard));
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FusionException($"{folder}: cannot create the output folder ({e.Message})", "check the path and permissions", e);
        }
        if (File.Exists(Path.Combine(folder, StoreManifest.FileName)))
        {
            StoreManifest? existing = null;
            string? problem = null;
            try
            {
                existing = StoreManifest.Read(folder);
                if (existing.ConfigHash != manifest.ConfigHash) problem = StoreManifest.FirstDifference(existing, manifest) ?? "config hash";
            }
            catch (FusionException e)
            {
                problem = e.Message;
            }
            if (problem is not null)
            {
                if (!overwrite)
                    throw new FusionException($"{folder} already holds a store of a different configuration ({problem})",
                        "write into another folder, or pass --overwrite to delete the old store first");
                DeleteStoreFiles(folder);
                manifest.Write(folder);
            }
        }
        else
        {
            manifest.Write(folder);
        }

        var parts = new List<StorePart>();
        var list = manifest.Parts(shard.Index);
        for (int p = 0; p < list.Count; p++)
        {
            var part = new StorePart(shard.Index, p, list[p].First, list[p].Count, Path.Combine(folder, manifest.PartFileName(shard.Index, p)));
            foreach (var tmp in Directory.EnumerateFiles(folder, Path.GetFileName(part.Path) + ".tmp-*")) TryDelete(tmp);
            if (File.Exists(part.Path))
            {
                using var f = SafetensorsFile.Open(part.Path);
                var meta = StorePartFile.ReadMetadata(f) ?? throw new FusionException($"{part.Path}: not a FuseSharp store part", "move it out of the store folder");
                StorePartFile.Check(manifest, part, meta);
                part.Done = true;
            }
            parts.Add(part);
        }
        return new StoreWriter(folder, manifest, shard, parts);
    }

    /// <summary>Writes one part (its rows in order). Thread-safe across different parts.</summary>
    public void Write(StorePart part, IReadOnlyList<StoreRow> rows)
    {
        ArgumentNullException.ThrowIfNull(part);
        ArgumentNullException.ThrowIfNull(rows);
        if (part.Shard != Shard.Index || !Parts.Contains(part)) throw new ArgumentException("the part does not belong to this writer's shard", nameof(part));
        StorePartFile.Write(Manifest, part, rows);
        part.Done = true;
    }

    private static void DeleteStoreFiles(string folder)
    {
        foreach (var f in Directory.EnumerateFiles(folder, "shard-*.safetensors*")) TryDelete(f);
        TryDelete(Path.Combine(folder, StoreManifest.FileName));
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
