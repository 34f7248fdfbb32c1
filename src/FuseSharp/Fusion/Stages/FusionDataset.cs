using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Store;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Stages;

/// <summary>
/// The training data of a fusion run seen as <see cref="FusionRow"/>s: either the target's representation store
/// joined with one aligned store per source (documents), or a "dataset" store written by <c>filter-nan</c> or
/// <c>pack</c>. Joining checks that every aligned store was made against this target store and that rows agree in
/// text hash and token ids.
/// </summary>
public sealed class FusionDataset
{
    private readonly StoreReader? _dataset;
    private readonly StoreReader? _target;
    private readonly IReadOnlyList<StoreReader> _aligned;

    private FusionDataset(StoreReader? dataset, StoreReader? target, IReadOnlyList<StoreReader> aligned)
    {
        _dataset = dataset;
        _target = target;
        _aligned = aligned;
    }

    /// <summary>A dataset store (kind "dataset").</summary>
    public static FusionDataset FromDataset(StoreReader dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Manifest.Kind != "dataset")
            throw new FusionException($"{dataset.Folder} is a {dataset.Manifest.Kind} store, not a dataset", "pass it with --target / --aligned instead");
        return new FusionDataset(dataset, null, []);
    }

    /// <summary>The target's representation joined with aligned stores (one per source, in candidate order).</summary>
    /// <exception cref="FusionException">The stores do not belong together.</exception>
    public static FusionDataset Join(StoreReader target, IReadOnlyList<StoreReader> aligned)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(aligned);
        if (target.Manifest.Kind != "representation" || target.Manifest.K == 0)
            throw new FusionException($"{target.Folder} is not a representation store with top-k (kind {target.Manifest.Kind})", "--target takes the target model's `fuse represent` output");
        foreach (var a in aligned)
        {
            if (a.Manifest.Kind != "aligned")
                throw new FusionException($"{a.Folder} is a {a.Manifest.Kind} store, not an aligned one", "--aligned takes `fuse align` outputs");
            if (a.Manifest.Info["target"]?.GetValue<string>() != target.Manifest.ConfigHash)
                throw new FusionException($"{a.Folder} was aligned against a different target representation than {target.Folder}", "rerun `fuse align` with this --target");
            target.RequireSameCorpus(a, target.Folder, a.Folder);
        }
        return new FusionDataset(null, target, aligned);
    }

    public long Rows => _dataset?.Rows ?? _target!.Rows;

    public int Sources => _dataset?.Manifest.Lists.Count ?? _aligned.Count;

    public int K => _dataset?.Manifest.K ?? _target!.Manifest.K;

    public string CorpusSha256 => (_dataset ?? _target)!.Manifest.CorpusSha256;

    public ColumnCodecKind Codec => (_dataset ?? _target)!.Manifest.Codec;

    public int RowsPerPart => (_dataset ?? _target)!.Manifest.RowsPerPart;

    /// <summary>The configuration hashes of the stores read (provenance of derived stores).</summary>
    public JsonArray Inputs => new((_dataset is not null ? [_dataset] : new[] { _target! }.Concat(_aligned)).Select(s => (JsonNode?)s.Manifest.ConfigHash).ToArray());

    /// <summary>Positions per row, without decoding the other columns.</summary>
    public int[] RowLengths() => (_dataset ?? _target)!.RowLengths();

    /// <summary>Per row, the candidates' metrics [rows × (1 + sources)], without decoding the other columns.</summary>
    public double[] Metrics()
    {
        if (_dataset is not null) return _dataset.RowMetrics();
        int c = 1 + _aligned.Count;
        var r = new double[Rows * c];
        var t = _target!.RowMetrics();
        int tm = _target.Manifest.Metrics.Count;
        for (long i = 0; i < Rows; i++) r[i * c] = tm > 0 ? t[i * tm] : double.NaN;
        for (int s = 0; s < _aligned.Count; s++)
        {
            var a = _aligned[s].RowMetrics();
            for (long i = 0; i < Rows; i++) r[i * c + 1 + s] = a[i];
        }
        return r;
    }

    /// <summary>All rows in order, one part of each store in memory at a time.</summary>
    public IEnumerable<(long Hash, FusionRow Row)> ReadRows()
    {
        var store = (_dataset ?? _target)!;
        foreach (var part in store.Parts)
        {
            foreach (var r in ReadRange(part.FirstRow, part.Rows)) yield return r;
        }
    }

    /// <summary>Rows [first, first + count).</summary>
    public IReadOnlyList<(long Hash, FusionRow Row)> ReadRange(long first, int count)
    {
        if (_dataset is not null) return _dataset.ReadRange(first, count).Select(r => (r.Hash, FromDatasetRow(r))).ToList();
        var t = _target!.ReadRange(first, count);
        var a = _aligned.Select(s => s.ReadRange(first, count)).ToList();
        var rows = new List<(long, FusionRow)>(count);
        for (int i = 0; i < t.Count; i++)
        {
            var tr = t[i];
            var sources = new List<SparseRows>(a.Count);
            var tokenMetrics = new float[]?[1 + a.Count];
            var metrics = new double[1 + a.Count];
            tokenMetrics[0] = tr.TokenCe;
            metrics[0] = tr.Metrics.Length > 0 ? tr.Metrics[0] : double.NaN;
            for (int s = 0; s < a.Count; s++)
            {
                var ar = a[s][i];
                if (ar.Hash != tr.Hash || !ar.InputIds.AsSpan().SequenceEqual(tr.InputIds))
                    throw new FusionException($"document {tr.Index}: {_aligned[s].Folder} does not hold the target's tokens for it", "rerun `fuse align` for that source against this target");
                sources.Add(ar.Lists[0].Rows);
                tokenMetrics[1 + s] = ar.Lists[0].TokenCe;
                metrics[1 + s] = ar.Metrics.Length > 0 ? ar.Metrics[0] : double.NaN;
            }
            rows.Add((tr.Hash, new FusionRow
            {
                InputIds = tr.InputIds,
                Labels = tr.Labels ?? tr.InputIds,
                Target = tr.TopK!,
                Sources = sources,
                Metrics = metrics,
                TokenMetrics = tokenMetrics,
                Segments = [new RowSegment(tr.Index, 0, tr.Positions, 0)],
            }));
        }
        return rows;
    }

    /// <summary>The manifest of a dataset store holding rows of this shape.</summary>
    internal static StoreManifest DatasetManifest(long rows, string corpus, int k, int sources, ColumnCodecKind codec, int rowsPerPart, JsonObject info) => new()
    {
        Kind = "dataset",
        Rows = rows,
        CorpusSha256 = corpus,
        RowsPerPart = rowsPerPart,
        Codec = codec,
        K = k,
        HasLabels = true,
        HasTokenCe = true,
        HasSegments = true,
        Lists = Enumerable.Range(0, sources).Select(s => new StoreListSpec($"source{s}", DType.F16, TokenCe: true)).ToList(),
        Metrics = ["target", .. Enumerable.Range(0, sources).Select(s => $"source{s}")],
        Info = info,
    };

    internal static StoreRow ToDatasetRow(FusionRow row, long index, long hash)
    {
        int p = row.Positions;
        float[] Ce(int c) => row.TokenMetrics?[c] ?? Enumerable.Repeat(float.NaN, p).ToArray();
        return new StoreRow
        {
            Index = index,
            Hash = hash,
            InputIds = row.InputIds,
            Labels = row.Labels,
            TopK = row.Target,
            TokenCe = Ce(0),
            Lists = row.Sources.Select((s, i) => new StoreList($"source{i}", s) { TokenCe = Ce(1 + i) }).ToList(),
            Metrics = row.Metrics,
            Segments = [.. row.Segments],
        };
    }

    private static FusionRow FromDatasetRow(StoreRow r) => new()
    {
        InputIds = r.InputIds,
        Labels = r.Labels ?? r.InputIds,
        Target = r.TopK!,
        Sources = r.Lists.Select(l => l.Rows).ToList(),
        Metrics = r.Metrics,
        TokenMetrics = [r.TokenCe, .. r.Lists.Select(l => l.TokenCe)],
        Segments = r.Segments ?? [],
    };

    /// <summary>The hash of a packed block: over its segments' document hashes and ranges.</summary>
    internal static long BlockHash(IReadOnlyList<RowSegment> segments, Func<long, long> documentHash)
    {
        var bytes = new byte[segments.Count * 24];
        for (int i = 0; i < segments.Count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 24), documentHash(segments[i].Document));
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 24 + 8), segments[i].Start);
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 24 + 16), segments[i].End);
        }
        return BinaryPrimitives.ReadInt64LittleEndian(SHA256.HashData(bytes));
    }
}
