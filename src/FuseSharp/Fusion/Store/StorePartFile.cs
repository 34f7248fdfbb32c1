using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Fuse;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Store;

/// <summary>One part of one shard: rows [FirstRow, FirstRow + Rows).</summary>
public sealed record StorePart(int Shard, int Index, long FirstRow, int Rows, string Path)
{
    /// <summary>The part file exists and belongs to this store's configuration.</summary>
    public bool Done { get; internal set; }
}

/// <summary>
/// Encoding of rows into one part file and back (layout in docs/formats.md): a safetensors file whose tensors are the
/// columns of its rows concatenated, with a JSON description under the metadata key <c>fusesharp</c> (config hash,
/// shard, part, first row, and each tensor's element dtype and shape, needed when the codec stores them compressed).
/// </summary>
internal static class StorePartFile
{
    public const string MetadataKey = "fusesharp";

    private sealed record Column(string Name, DType DType, long[] Shape, byte[] Raw);

    /// <summary>Writes rows as a part file (atomically: a temporary file renamed into place).</summary>
    public static void Write(StoreManifest m, StorePart part, IReadOnlyList<StoreRow> rows)
    {
        if (rows.Count != part.Rows)
            throw new ArgumentException($"part {part.Index} of shard {part.Shard} holds {part.Rows} rows, {rows.Count} were given", nameof(rows));
        var columns = Columns(m, part, rows);
        var tensors = new JsonObject();
        var specs = new List<TensorSpec>();
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var c in columns)
        {
            tensors[c.Name] = new JsonObject { ["dtype"] = c.DType.SafetensorsName(), ["shape"] = new JsonArray(c.Shape.Select(d => (JsonNode)d).ToArray()) };
            if (m.Codec == ColumnCodecKind.None)
            {
                specs.Add(new TensorSpec(c.Name, c.DType, new Shape(c.Shape)));
                data[c.Name] = c.Raw;
            }
            else
            {
                var encoded = ColumnCodec.Encode(c.Raw, c.DType.Size(), m.Codec);
                specs.Add(new TensorSpec(c.Name, DType.U8, new Shape((long)encoded.Length)));
                data[c.Name] = encoded;
            }
        }
        var meta = new JsonObject
        {
            ["format"] = StoreManifest.FormatName,
            ["version"] = StoreManifest.FormatVersion,
            ["config_hash"] = m.ConfigHash,
            ["codec"] = m.Codec.Name(),
            ["shard"] = part.Shard,
            ["shards"] = m.Shards,
            ["part"] = part.Index,
            ["first_row"] = part.FirstRow,
            ["rows"] = part.Rows,
            ["positions"] = rows.Sum(r => (long)r.Positions),
            ["tensors"] = tensors,
        };
        using var w = SafetensorsWriter.Create(part.Path, specs, new Dictionary<string, string> { [MetadataKey] = meta.ToJsonString() });
        foreach (var (name, bytes) in data) w.Write(name, bytes);
        w.Commit();
    }

    /// <summary>Reads the metadata of a part file, or null when it has none (not a store part).</summary>
    public static JsonObject? ReadMetadata(SafetensorsFile f) =>
        f.Metadata.TryGetValue(MetadataKey, out var s) ? JsonNode.Parse(s)?.AsObject() : null;

    /// <summary>Decodes one column of a part file (e.g. <c>row_length</c> or <c>metrics</c>) without the others.</summary>
    public static T[] ReadColumn<T>(StoreManifest m, StorePart part, string name, DType dtype) where T : unmanaged
    {
        using var f = SafetensorsFile.Open(part.Path);
        var meta = ReadMetadata(f) ?? throw new FusionException($"{part.Path}: not a FuseSharp store part (no '{MetadataKey}' metadata)");
        Check(m, part, meta);
        var t = meta["tensors"]![name] ?? throw new FusionException($"{part.Path}: column '{name}' is missing");
        if (!DTypes.TryParseSafetensors(t["dtype"]!.GetValue<string>(), out var dt) || dt != dtype)
            throw new FusionException($"{part.Path}: column '{name}' has dtype {t["dtype"]}, expected {dtype.SafetensorsName()}");
        long elements = t["shape"]!.AsArray().Aggregate(1L, (a, d) => a * d!.GetValue<long>());
        var raw = new byte[checked(elements * dt.Size())];
        ColumnCodec.Decode(f.GetBytes(name), dt.Size(), m.Codec, raw, $"{part.Path}: column '{name}'");
        return MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }

    /// <summary>Decodes the rows of a part file.</summary>
    public static List<StoreRow> Read(StoreManifest m, StorePart part)
    {
        using var f = SafetensorsFile.Open(part.Path);
        var meta = ReadMetadata(f) ?? throw new FusionException($"{part.Path}: not a FuseSharp store part (no '{MetadataKey}' metadata)");
        Check(m, part, meta);
        var tensors = meta["tensors"]!.AsObject();
        byte[] Raw(string name, DType expected, out long[] shape)
        {
            var t = tensors[name] ?? throw new FusionException($"{part.Path}: column '{name}' is missing", "the part was written by a different FuseSharp version; rerun the stage");
            if (!DTypes.TryParseSafetensors(t["dtype"]!.GetValue<string>(), out var dt) || dt != expected)
                throw new FusionException($"{part.Path}: column '{name}' has dtype {t["dtype"]}, expected {expected.SafetensorsName()}");
            shape = t["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            var raw = new byte[checked(elements * dt.Size())];
            ColumnCodec.Decode(f.GetBytes(name), dt.Size(), m.Codec, raw, $"{part.Path}: column '{name}'");
            return raw;
        }
        T[] Arr<T>(string name, DType dt) where T : unmanaged => MemoryMarshal.Cast<byte, T>(Raw(name, dt, out _)).ToArray();

        int r = part.Rows;
        var index = Arr<long>("row_index", DType.I64);
        var hash = Arr<long>("row_hash", DType.I64);
        var length = Arr<int>("row_length", DType.I32);
        if (index.Length != r || hash.Length != r || length.Length != r) throw Corrupt(part, "row columns");
        for (int i = 0; i < r; i++)
        {
            if (index[i] != part.FirstRow + i) throw Corrupt(part, $"row_index[{i}] = {index[i]}");
        }
        long positions = length.Sum(x => (long)x);
        var inputIds = Arr<int>("input_ids", DType.I32);
        if (inputIds.Length != positions) throw Corrupt(part, "input_ids length");
        int[]? labels = m.HasLabels ? Arr<int>("labels", DType.I32) : null;
        int[]? topIds = null;
        float[]? topLogits = null;
        if (m.K > 0)
        {
            topIds = Arr<int>("topk_ids", DType.I32);
            topLogits = HalfToSingle(Arr<Half>("topk_logits", DType.F16));
        }
        float[]? tokenCe = m.HasTokenCe ? HalfToSingle(Arr<Half>("token_ce", DType.F16)) : null;
        double[] metrics = m.Metrics.Count > 0 ? Arr<double>("metrics", DType.F64) : [];
        sbyte[]? choice = m.HasChoice ? Arr<sbyte>("choice", DType.I8) : null;
        var lists = new List<(StoreListSpec Spec, int[] Counts, int[] Ids, float[] Values, byte[]? Outcomes, float[]? TokenCe)>();
        foreach (var spec in m.Lists)
        {
            var counts = Arr<int>(spec.Name + ".count", DType.I32);
            var ids = Arr<int>(spec.Name + ".ids", DType.I32);
            var values = ReadValues(Raw(spec.Name + ".values", spec.ValueDType, out _), spec.ValueDType);
            var outcomes = spec.Outcomes ? Raw(spec.Name + ".outcome", DType.U8, out _) : null;
            var lce = spec.TokenCe ? HalfToSingle(Arr<Half>(spec.Name + ".token_ce", DType.F16)) : null;
            if (counts.Length != positions || ids.Length != values.Length || counts.Sum(c => (long)c) != ids.Length) throw Corrupt(part, $"list '{spec.Name}'");
            lists.Add((spec, counts, ids, values, outcomes, lce));
        }
        int[]? segCount = null;
        long[]? segs = null;
        if (m.HasSegments)
        {
            segCount = Arr<int>("segment_count", DType.I32);
            segs = Arr<long>("segments", DType.I64);
        }

        var rows = new List<StoreRow>(r);
        int pos = 0, seg = 0;
        var entry = new int[lists.Count];
        for (int i = 0; i < r; i++)
        {
            int n = length[i];
            var rowLists = new List<StoreList>(lists.Count);
            for (int li = 0; li < lists.Count; li++)
            {
                var l = lists[li];
                var offsets = new int[n + 1];
                for (int t = 0; t < n; t++) offsets[t + 1] = offsets[t] + l.Counts[pos + t];
                int e = offsets[n];
                rowLists.Add(new StoreList(l.Spec.Name, new SparseRows(offsets, l.Ids.AsSpan(entry[li], e).ToArray(), l.Values.AsSpan(entry[li], e).ToArray()))
                {
                    Outcomes = l.Outcomes?.AsSpan(pos, n).ToArray(),
                    TokenCe = l.TokenCe?.AsSpan(pos, n).ToArray(),
                });
                entry[li] += e;
            }
            RowSegment[]? rowSegs = null;
            if (segCount is not null)
            {
                rowSegs = new RowSegment[segCount[i]];
                for (int s = 0; s < rowSegs.Length; s++, seg++)
                    rowSegs[s] = new RowSegment(segs![seg * 4], (int)segs[seg * 4 + 1], (int)segs[seg * 4 + 2], (int)segs[seg * 4 + 3]);
            }
            rows.Add(new StoreRow
            {
                Index = index[i],
                Hash = hash[i],
                InputIds = inputIds.AsSpan(pos, n).ToArray(),
                Labels = labels?.AsSpan(pos, n).ToArray(),
                TopK = topIds is null ? null : SparseRows.Dense(topIds.AsSpan(pos * m.K, n * m.K).ToArray(), topLogits!.AsSpan(pos * m.K, n * m.K).ToArray(), m.K),
                TokenCe = tokenCe?.AsSpan(pos, n).ToArray(),
                Lists = rowLists,
                Metrics = metrics.AsSpan(i * m.Metrics.Count, m.Metrics.Count).ToArray(),
                Choice = choice?.AsSpan(pos, n).ToArray(),
                Segments = rowSegs,
            });
            pos += n;
        }
        return rows;
    }

    /// <summary>Checks a part's metadata against the manifest and the expected part.</summary>
    public static void Check(StoreManifest m, StorePart part, JsonObject meta)
    {
        var hash = meta["config_hash"]?.GetValue<string>();
        if (hash != m.ConfigHash)
            throw new FusionException($"{part.Path}: written for a different configuration (config hash {Short(hash)}, this store's is {Short(m.ConfigHash)})",
                "it comes from another run (other models, corpus, k or shard count); move it away, or write into a fresh folder");
        if (meta["shard"]?.GetValue<int>() != part.Shard || meta["part"]?.GetValue<int>() != part.Index
            || meta["first_row"]?.GetValue<long>() != part.FirstRow || meta["rows"]?.GetValue<int>() != part.Rows)
            throw new FusionException($"{part.Path}: its metadata says shard {meta["shard"]} part {meta["part"]} rows {meta["first_row"]}+{meta["rows"]}, the file name says shard {part.Shard} part {part.Index}",
                "the file was renamed; restore its name or rerun that shard");
    }

    private static List<Column> Columns(StoreManifest m, StorePart part, IReadOnlyList<StoreRow> rows)
    {
        int r = rows.Count;
        long p = 0;
        for (int i = 0; i < r; i++)
        {
            var row = rows[i];
            if (row.Index != part.FirstRow + i) throw new ArgumentException($"row {i} of the part has index {row.Index}, expected {part.FirstRow + i}", nameof(rows));
            Validate(m, row);
            p += row.Positions;
        }
        var cols = new List<Column>
        {
            new("row_index", DType.I64, [r], Bytes(rows.Select(x => x.Index).ToArray())),
            new("row_hash", DType.I64, [r], Bytes(rows.Select(x => x.Hash).ToArray())),
            new("row_length", DType.I32, [r], Bytes(rows.Select(x => x.Positions).ToArray())),
        };
        if (m.Metrics.Count > 0) cols.Add(new("metrics", DType.F64, [r, m.Metrics.Count], Bytes(rows.SelectMany(x => x.Metrics).ToArray())));
        cols.Add(new("input_ids", DType.I32, [p], Bytes(rows.SelectMany(x => x.InputIds).ToArray())));
        if (m.HasLabels) cols.Add(new("labels", DType.I32, [p], Bytes(rows.SelectMany(x => x.Labels!).ToArray())));
        if (m.K > 0)
        {
            cols.Add(new("topk_ids", DType.I32, [p, m.K], Bytes(rows.SelectMany(x => x.TopK!.Ids).ToArray())));
            cols.Add(new("topk_logits", DType.F16, [p, m.K], Bytes(rows.SelectMany(x => x.TopK!.Values).Select(v => (Half)v).ToArray())));
        }
        if (m.HasTokenCe) cols.Add(new("token_ce", DType.F16, [p], Bytes(rows.SelectMany(x => x.TokenCe!).Select(v => (Half)v).ToArray())));
        for (int li = 0; li < m.Lists.Count; li++)
        {
            var spec = m.Lists[li];
            var lists = rows.Select(x => x.Lists[li]).ToList();
            var counts = lists.SelectMany(l => Enumerable.Range(0, l.Rows.Positions).Select(l.Rows.Count)).ToArray();
            var ids = lists.SelectMany(l => l.Rows.Ids).ToArray();
            var values = lists.SelectMany(l => l.Rows.Values).ToArray();
            cols.Add(new(spec.Name + ".count", DType.I32, [p], Bytes(counts)));
            cols.Add(new(spec.Name + ".ids", DType.I32, [ids.Length], Bytes(ids)));
            cols.Add(new(spec.Name + ".values", spec.ValueDType, [values.Length], WriteValues(values, spec.ValueDType)));
            if (spec.Outcomes) cols.Add(new(spec.Name + ".outcome", DType.U8, [p], lists.SelectMany(l => l.Outcomes!).ToArray()));
            if (spec.TokenCe) cols.Add(new(spec.Name + ".token_ce", DType.F16, [p], Bytes(lists.SelectMany(l => l.TokenCe!).Select(v => (Half)v).ToArray())));
        }
        if (m.HasChoice) cols.Add(new("choice", DType.I8, [p], Bytes(rows.SelectMany(x => x.Choice!).ToArray())));
        if (m.HasSegments)
        {
            var segs = rows.SelectMany(x => x.Segments!).ToList();
            cols.Add(new("segment_count", DType.I32, [r], Bytes(rows.Select(x => x.Segments!.Length).ToArray())));
            cols.Add(new("segments", DType.I64, [segs.Count, 4], Bytes(segs.SelectMany(s => new long[] { s.Document, s.Start, s.End, s.Offset }).ToArray())));
        }
        return cols;
    }

    private static void Validate(StoreManifest m, StoreRow row)
    {
        int p = row.Positions;
        string where = $"row {row.Index}";
        if (m.HasLabels != (row.Labels is not null) || (row.Labels is not null && row.Labels.Length != p)) throw Mismatch(where, "labels");
        if ((m.K > 0) != (row.TopK is not null) || (row.TopK is not null && (row.TopK.Positions != p || row.TopK.Ids.Length != (long)p * m.K))) throw Mismatch(where, $"top-k (k = {m.K})");
        if (m.HasTokenCe != (row.TokenCe is not null) || (row.TokenCe is not null && row.TokenCe.Length != p)) throw Mismatch(where, "token_ce");
        if (m.HasChoice != (row.Choice is not null) || (row.Choice is not null && row.Choice.Length != p)) throw Mismatch(where, "choice");
        if (m.HasSegments != (row.Segments is not null)) throw Mismatch(where, "segments");
        if (row.Metrics.Length != m.Metrics.Count) throw Mismatch(where, $"metrics ({m.Metrics.Count})");
        if (row.Lists.Count != m.Lists.Count) throw Mismatch(where, $"lists ({m.Lists.Count})");
        for (int i = 0; i < m.Lists.Count; i++)
        {
            var l = row.Lists[i];
            var s = m.Lists[i];
            if (l.Name != s.Name || l.Rows.Positions != p || s.Outcomes != (l.Outcomes is not null) || s.TokenCe != (l.TokenCe is not null)
                || (l.Outcomes is not null && l.Outcomes.Length != p) || (l.TokenCe is not null && l.TokenCe.Length != p))
                throw Mismatch(where, $"list '{s.Name}'");
        }
    }

    private static ArgumentException Mismatch(string where, string what) => new($"{where}: {what} does not match the store's columns");

    private static FusionException Corrupt(StorePart part, string what) =>
        new($"{part.Path}: inconsistent {what}", "the file is damaged; delete it and rerun its shard (the other parts are kept)");

    private static string Short(string? h) => h is null ? "none" : h[..Math.Min(12, h.Length)];

    private static byte[] Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static float[] HalfToSingle(Half[] h)
    {
        var f = new float[h.Length];
        for (int i = 0; i < h.Length; i++) f[i] = (float)h[i];
        return f;
    }

    private static byte[] WriteValues(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => Bytes(values),
        DType.F16 => Bytes(values.Select(v => (Half)v).ToArray()),
        DType.BF16 => Bytes(values.Select(BFloat16Conversion.FromSingle).ToArray()),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "list values are F32, F16 or BF16"),
    };

    private static float[] ReadValues(byte[] raw, DType dtype) => dtype switch
    {
        DType.F32 => MemoryMarshal.Cast<byte, float>(raw).ToArray(),
        DType.F16 => HalfToSingle(MemoryMarshal.Cast<byte, Half>(raw).ToArray()),
        DType.BF16 => MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(BFloat16Conversion.ToSingle).ToArray(),
        _ => throw new FusionException($"list values of dtype {dtype} are not supported"),
    };
}
