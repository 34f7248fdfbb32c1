using System.Globalization;
using FuseSharp.IO;

namespace FuseSharp.Fusion.Store;

/// <summary>
/// Reads a store folder: the manifest, and the part files of every shard in row order (each checked against the
/// manifest's configuration hash). A store whose shards were written on different machines is read the same way once
/// their files are copied into one folder.
/// </summary>
public sealed class StoreReader
{
    private StoreReader(string folder, StoreManifest manifest, IReadOnlyList<StorePart> parts)
    {
        Folder = folder;
        Manifest = manifest;
        Parts = parts;
    }

    public string Folder { get; }

    public StoreManifest Manifest { get; }

    /// <summary>All parts of all shards in row order.</summary>
    public IReadOnlyList<StorePart> Parts { get; }

    public long Rows => Manifest.Rows;

    /// <summary>Parts not (yet) written.</summary>
    public IReadOnlyList<StorePart> Missing => Parts.Where(p => !p.Done).ToList();

    /// <summary>Opens a store; with <paramref name="requireComplete"/>, every part of every shard must be there.</summary>
    /// <exception cref="FusionException">Not a store, a foreign part, or (when required) missing parts.</exception>
    public static StoreReader Open(string folder, bool requireComplete = true)
    {
        var m = StoreManifest.Read(folder);
        var parts = new List<StorePart>();
        for (int s = 0; s < m.Shards; s++)
        {
            var list = m.Parts(s);
            for (int p = 0; p < list.Count; p++)
            {
                var part = new StorePart(s, p, list[p].First, list[p].Count, Path.Combine(folder, m.PartFileName(s, p)));
                if (File.Exists(part.Path))
                {
                    using var f = SafetensorsFile.Open(part.Path);
                    var meta = StorePartFile.ReadMetadata(f) ?? throw new FusionException($"{part.Path}: not a FuseSharp store part", "move it out of the store folder");
                    StorePartFile.Check(m, part, meta);
                    part.Done = true;
                }
                parts.Add(part);
            }
        }
        var reader = new StoreReader(folder, m, parts);
        if (requireComplete && reader.Missing.Count > 0)
        {
            var shards = reader.Missing.GroupBy(p => p.Shard).Select(g => $"{g.Key}/{m.Shards} ({g.Count()} of {m.Parts(g.Key).Count} parts)").ToList();
            throw new FusionException($"{folder}: incomplete store: shard{(shards.Count > 1 ? "s" : "")} {string.Join(", ", shards.Take(8))}{(shards.Count > 8 ? ", ..." : "")} not finished",
                $"run the stage again with --shard I/{m.Shards} for {(shards.Count > 1 ? "those shards" : "that shard")} (it resumes), or copy in the part files written elsewhere");
        }
        return reader;
    }

    /// <summary>The rows of one part.</summary>
    public IReadOnlyList<StoreRow> ReadPart(StorePart part)
    {
        ArgumentNullException.ThrowIfNull(part);
        if (!part.Done) throw new FusionException($"{part.Path}: this part has not been written", "finish the stage for its shard first");
        return StorePartFile.Read(Manifest, part);
    }

    /// <summary>All rows in order, one part in memory at a time.</summary>
    public IEnumerable<StoreRow> ReadRows()
    {
        foreach (var part in Parts)
            foreach (var row in ReadPart(part)) yield return row;
    }

    /// <summary>Rows [first, first + count) in order, decoding only the parts that overlap the range.</summary>
    /// <exception cref="FusionException">The range is outside the store or covers a missing part.</exception>
    public IReadOnlyList<StoreRow> ReadRange(long first, int count)
    {
        if (first < 0 || count < 0 || first + count > Rows)
            throw new FusionException($"{Folder}: rows {first}..{first + count} are outside the store's {Rows} rows");
        var rows = new List<StoreRow>(count);
        foreach (var part in Parts)
        {
            if (part.FirstRow + part.Rows <= first || part.FirstRow >= first + count) continue;
            foreach (var row in ReadPart(part))
            {
                if (row.Index >= first && row.Index < first + count) rows.Add(row);
            }
        }
        rows.Sort((a, b) => a.Index.CompareTo(b.Index));
        return rows;
    }

    /// <summary>Every row's number of positions, decoding only that column.</summary>
    public int[] RowLengths() => Parts.SelectMany(p => p.Done ? StorePartFile.ReadColumn<int>(Manifest, p, "row_length", Tensors.DType.I32) : throw Missing1(p)).ToArray();

    /// <summary>Every row's metrics [rows, metrics] (row-major), decoding only that column.</summary>
    public double[] RowMetrics() => Manifest.Metrics.Count == 0 ? [] : Parts.SelectMany(p => p.Done ? StorePartFile.ReadColumn<double>(Manifest, p, "metrics", Tensors.DType.F64) : throw Missing1(p)).ToArray();

    private static FusionException Missing1(StorePart p) => new($"{p.Path}: this part has not been written", "finish the stage for its shard first");

    /// <summary>Positions held by a written part (from its metadata; no column is decoded).</summary>
    public long PartPositions(StorePart part)
    {
        ArgumentNullException.ThrowIfNull(part);
        using var f = SafetensorsFile.Open(part.Path);
        return StorePartFile.ReadMetadata(f)?["positions"]?.GetValue<long>() ?? 0;
    }

    /// <summary>Total bytes of the part files (for the storage report).</summary>
    public long PartBytes() => Parts.Where(p => p.Done).Sum(p => new FileInfo(p.Path).Length);

    /// <summary>
    /// Checks that this store and <paramref name="other"/> cover the same corpus row by row: equal row counts and
    /// corpus hashes (the per-row hashes locate the first differing row).
    /// </summary>
    /// <exception cref="FusionException">They do not line up.</exception>
    public void RequireSameCorpus(StoreReader other, string thisName, string otherName)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Rows != other.Rows)
            throw new FusionException($"{thisName} has {Rows.ToString(CultureInfo.InvariantCulture)} documents but {otherName} has {other.Rows.ToString(CultureInfo.InvariantCulture)}",
                "both must be made from the same split corpus (fusesharp fuse split output), in the same order");
        if (Manifest.CorpusSha256 == other.Manifest.CorpusSha256) return;
        using var a = ReadRows().GetEnumerator();
        using var b = other.ReadRows().GetEnumerator();
        while (a.MoveNext() && b.MoveNext())
        {
            if (a.Current.Hash != b.Current.Hash)
                throw new FusionException($"document {a.Current.Index} differs between {thisName} and {otherName} (text hash {a.Current.Hash:x16} vs {b.Current.Hash:x16})",
                    "both must be made from the same corpus file, in the same order; rerun the stage that used a different one");
        }
        throw new FusionException($"{thisName} and {otherName} were made from different corpora (corpus hashes differ)", "rerun the stage that used a different corpus file");
    }
}
