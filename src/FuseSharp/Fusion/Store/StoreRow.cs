using FuseSharp.Fusion.Fuse;

namespace FuseSharp.Fusion.Store;

/// <summary>A named ragged per-position column of a row: an aligned source's lists, or the fused distribution.</summary>
public sealed record StoreList(string Name, SparseRows Rows)
{
    /// <summary>Per position, an <see cref="Alignment.AlignmentOutcome"/> (aligned lists), or null.</summary>
    public byte[]? Outcomes { get; init; }

    /// <summary>Per position, the CE re-aligned to this position (NaN where none), or null.</summary>
    public float[]? TokenCe { get; init; }
}

/// <summary>
/// One row of a store (a document, or a packed block), real positions only. Which fields are present is fixed per
/// store by its <see cref="StoreManifest"/>.
/// </summary>
public sealed class StoreRow
{
    /// <summary>Global row number in the corpus (0-based).</summary>
    public required long Index { get; init; }

    /// <summary>The source record's hash (<see cref="StoreManifest.HashText"/>): rows of different stores over the same corpus must agree.</summary>
    public required long Hash { get; init; }

    /// <summary>Token ids [P] (the target's ids in aligned, packed and fused stores).</summary>
    public required int[] InputIds { get; init; }

    /// <summary>Labels [P] (-100 = not supervised), when the store keeps them.</summary>
    public int[]? Labels { get; init; }

    /// <summary>The model's top-k per position (k entries each, raw logits, descending), when present.</summary>
    public SparseRows? TopK { get; init; }

    /// <summary>Per position the CE of the next token under the model (NaN where there is no supervised next token).</summary>
    public float[]? TokenCe { get; init; }

    /// <summary>Ragged per-position columns, in manifest order.</summary>
    public IReadOnlyList<StoreList> Lists { get; init; } = [];

    /// <summary>Per-row metrics in the order of <see cref="StoreManifest.Metrics"/>.</summary>
    public double[] Metrics { get; init; } = [];

    /// <summary>Per position the chosen candidate (fused stores: 0 = target, 1.. = sources, -1 = AvgCE mix), when present.</summary>
    public sbyte[]? Choice { get; init; }

    /// <summary>Provenance of a packed row, when present.</summary>
    public RowSegment[]? Segments { get; init; }

    public int Positions => InputIds.Length;
}
