using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Store;

/// <summary>A ragged column of a store: its name, the dtype of its values and which per-position extras it has.</summary>
public sealed record StoreListSpec(string Name, DType ValueDType, bool Outcomes = false, bool TokenCe = false);

/// <summary>
/// <c>manifest.json</c> of a store folder (format in docs/formats.md): what the store holds (kind, columns, k,
/// metrics), how it is cut (rows, shards, rows per part, codec), what it was made from (corpus hash, models,
/// tokenizers, settings: <see cref="Info"/>) and a hash of all of that. The content is deterministic (no paths,
/// hosts or times), so every machine working on a shard writes the same manifest, and a part file is accepted only
/// if it carries the same <see cref="ConfigHash"/>.
/// </summary>
public sealed class StoreManifest
{
    public const string FileName = "manifest.json";
    public const string FormatName = "fusesharp-store";
    public const int FormatVersion = 1;

    /// <summary>"representation" (a model over a corpus), "aligned" (a source in target positions), "packed" or "fused".</summary>
    public required string Kind { get; init; }

    /// <summary>Rows of the whole corpus (all shards).</summary>
    public required long Rows { get; init; }

    /// <summary>Hex SHA-256 over the row hashes in order: two stores over the same corpus have the same value.</summary>
    public required string CorpusSha256 { get; init; }

    public int Shards { get; init; } = 1;

    public int RowsPerPart { get; init; } = 256;

    public ColumnCodecKind Codec { get; init; } = ColumnCodecKind.ShuffleZlib;

    /// <summary>Top-k width of the <c>topk_*</c> columns; 0 when the store has none.</summary>
    public int K { get; init; }

    public bool HasLabels { get; init; }

    public bool HasTokenCe { get; init; }

    public bool HasChoice { get; init; }

    public bool HasSegments { get; init; }

    public IReadOnlyList<StoreListSpec> Lists { get; init; } = [];

    /// <summary>Names of the per-row metrics (columns of <c>metrics</c>), e.g. "metric_ce".</summary>
    public IReadOnlyList<string> Metrics { get; init; } = [];

    /// <summary>Provenance: models, tokenizers, stage settings. Part of the configuration hash.</summary>
    public JsonObject Info { get; init; } = [];

    /// <summary>SHA-256 (hex) of the canonical manifest without this field.</summary>
    public string ConfigHash => Hash(ToJson(includeHash: false).ToJsonString());

    /// <summary>The part file of shard <paramref name="shard"/>, part <paramref name="part"/>.</summary>
    public string PartFileName(int shard, int part) =>
        string.Create(CultureInfo.InvariantCulture, $"shard-{shard:D5}-of-{Shards:D5}.part-{part:D5}.safetensors");

    /// <summary>Row ranges of the parts of one shard.</summary>
    public IReadOnlyList<(long First, int Count)> Parts(int shard)
    {
        var (start, end) = new ShardSpec(shard, Shards).Range(Rows);
        var r = new List<(long, int)>();
        for (long first = start; first < end; first += RowsPerPart) r.Add((first, (int)Math.Min(RowsPerPart, end - first)));
        return r;
    }

    /// <summary>The 64-bit row hash of a source record: the first 8 bytes (little-endian) of SHA-256 of its UTF-8 text.</summary>
    public static long HashText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), h);
        return BinaryPrimitives.ReadInt64LittleEndian(h);
    }

    /// <summary>The corpus hash over row hashes (8 bytes each, little-endian, in row order).</summary>
    public static string HashCorpus(IReadOnlyList<long> rowHashes)
    {
        ArgumentNullException.ThrowIfNull(rowHashes);
        var bytes = new byte[rowHashes.Count * 8];
        for (int i = 0; i < rowHashes.Count; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), rowHashes[i]);
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    public JsonObject ToJson(bool includeHash = true)
    {
        var o = new JsonObject
        {
            ["format"] = FormatName,
            ["version"] = FormatVersion,
            ["kind"] = Kind,
            ["rows"] = Rows,
            ["corpus_sha256"] = CorpusSha256,
            ["shards"] = Shards,
            ["rows_per_part"] = RowsPerPart,
            ["codec"] = Codec.Name(),
            ["k"] = K,
            ["labels"] = HasLabels,
            ["token_ce"] = HasTokenCe,
            ["choice"] = HasChoice,
            ["segments"] = HasSegments,
            ["lists"] = new JsonArray(Lists.Select(l => (JsonNode)new JsonObject
            {
                ["name"] = l.Name,
                ["values"] = l.ValueDType.SafetensorsName(),
                ["outcomes"] = l.Outcomes,
                ["token_ce"] = l.TokenCe,
            }).ToArray()),
            ["metrics"] = new JsonArray(Metrics.Select(m => (JsonNode?)m).ToArray()),
            ["info"] = Info.DeepClone(),
        };
        if (includeHash) o["config_hash"] = ConfigHash;
        return o;
    }

    /// <summary>Writes <c>manifest.json</c> into <paramref name="folder"/> atomically.</summary>
    public void Write(string folder) =>
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>Reads and checks <c>manifest.json</c> of a store folder.</summary>
    /// <exception cref="FusionException">Missing, malformed, from another format version, or edited (hash mismatch).</exception>
    public static StoreManifest Read(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new FusionException($"{folder}: not a FuseSharp store (no {FileName})", "give the output folder of a `fusesharp fuse` stage");
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IOException)
        {
            throw new FusionException($"{path}: malformed manifest ({e.Message})", "the file is damaged; run the stage again into a new folder", e);
        }
        try
        {
            if (o["format"]?.GetValue<string>() != FormatName)
                throw new FusionException($"{path}: not a FuseSharp store manifest (format '{o["format"]}')");
            int version = o["version"]!.GetValue<int>();
            if (version != FormatVersion)
                throw new FusionException($"{path}: store format version {version}; this FuseSharp reads version {FormatVersion}", "use the FuseSharp version that wrote it, or rerun the stage");
            var m = new StoreManifest
            {
                Kind = o["kind"]!.GetValue<string>(),
                Rows = o["rows"]!.GetValue<long>(),
                CorpusSha256 = o["corpus_sha256"]!.GetValue<string>(),
                Shards = o["shards"]!.GetValue<int>(),
                RowsPerPart = o["rows_per_part"]!.GetValue<int>(),
                Codec = ColumnCodec.Parse(o["codec"]!.GetValue<string>()),
                K = o["k"]!.GetValue<int>(),
                HasLabels = o["labels"]!.GetValue<bool>(),
                HasTokenCe = o["token_ce"]!.GetValue<bool>(),
                HasChoice = o["choice"]!.GetValue<bool>(),
                HasSegments = o["segments"]!.GetValue<bool>(),
                Lists = o["lists"]!.AsArray().Select(l => new StoreListSpec(
                    l!["name"]!.GetValue<string>(),
                    DTypes.TryParseSafetensors(l["values"]!.GetValue<string>(), out var dt) ? dt : throw new FusionException($"{path}: unknown dtype {l["values"]}"),
                    l["outcomes"]!.GetValue<bool>(),
                    l["token_ce"]!.GetValue<bool>())).ToList(),
                Metrics = o["metrics"]!.AsArray().Select(x => x!.GetValue<string>()).ToList(),
                Info = o["info"]?.DeepClone().AsObject() ?? [],
            };
            if (m.Rows < 0 || m.Shards <= 0 || m.RowsPerPart <= 0 || m.K < 0)
                throw new FusionException($"{path}: invalid counts (rows {m.Rows}, shards {m.Shards}, rows_per_part {m.RowsPerPart}, k {m.K})");
            var stored = o["config_hash"]?.GetValue<string>();
            if (stored != m.ConfigHash)
                throw new FusionException($"{path}: config_hash does not match the manifest's content (edited by hand?)", "restore the original manifest.json from another copy of the store, or rerun the stage");
            return m;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or KeyNotFoundException)
        {
            throw new FusionException($"{path}: malformed manifest ({e.Message})", "the file is damaged; run the stage again into a new folder", e);
        }
    }

    /// <summary>The first top-level field in which two manifests differ (for error messages), or null.</summary>
    public static string? FirstDifference(StoreManifest a, StoreManifest b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var ja = a.ToJson(false);
        var jb = b.ToJson(false);
        foreach (var (key, va) in ja)
        {
            var sa = va?.ToJsonString() ?? "null";
            var sb = jb[key]?.ToJsonString() ?? "null";
            if (sa != sb)
            {
                if (key == "info" && va is JsonObject ia && jb[key] is JsonObject ib)
                {
                    foreach (var (k2, v2) in ia)
                    {
                        var x = v2?.ToJsonString() ?? "null";
                        var y = ib[k2]?.ToJsonString() ?? "null";
                        if (x != y) return $"info.{k2}: {Clip(x)} vs {Clip(y)}";
                    }
                    foreach (var (k2, v2) in ib)
                        if (!ia.ContainsKey(k2)) return $"info.{k2}: absent vs {Clip(v2?.ToJsonString() ?? "null")}";
                }
                return $"{key}: {Clip(sa)} vs {Clip(sb)}";
            }
        }
        return null;
    }

    private static string Clip(string s) => s.Length <= 120 ? s : s[..117] + "...";

    private static string Hash(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}
