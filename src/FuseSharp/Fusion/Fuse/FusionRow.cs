namespace FuseSharp.Fusion.Fuse;

/// <summary>Where a stretch of a row came from: document <see cref="Document"/> positions [Start, End) at <see cref="Offset"/> in the row.</summary>
public readonly record struct RowSegment(long Document, int Start, int End, int Offset)
{
    public int Length => End - Start;
}

/// <summary>
/// One training row of the fusion data in target positions: a document (FuseChat: one dialogue) or a packed block
/// (FuseLLM). Candidates are numbered as the trainer stacks them: 0 = the target model's own distribution
/// (<see cref="Target"/>, the "ref model"), 1.. = the aligned sources in <see cref="Sources"/>. Only real positions
/// are held (no padding).
/// </summary>
public sealed class FusionRow
{
    /// <summary>Target token ids [P].</summary>
    public required int[] InputIds { get; init; }

    /// <summary>Labels [P] aligned with <see cref="InputIds"/> (HF shifts them); -100 where not supervised (FuseChat instruction masking).</summary>
    public required int[] Labels { get; init; }

    /// <summary>The target model's own top-k per position (raw logits).</summary>
    public required SparseRows Target { get; init; }

    /// <summary>Each source's aligned list per position (raw logits or a one-hot 1.0; empty = use <see cref="Target"/>).</summary>
    public required IReadOnlyList<SparseRows> Sources { get; init; }

    /// <summary>Sequence-level CE per candidate [1 + sources]: the reference's <c>metric_ce</c>, <c>metric_ce_aligned_i</c>.</summary>
    public required double[] Metrics { get; init; }

    /// <summary>Optional per-position CE per candidate [1 + sources][P] in target positions; NaN where a candidate has none (e.g. a fallback position).</summary>
    public float[]?[]? TokenMetrics { get; init; }

    /// <summary>Which documents the row holds (one segment for an unpacked document).</summary>
    public IReadOnlyList<RowSegment> Segments { get; init; } = [];

    public int Positions => InputIds.Length;

    public int Candidates => 1 + Sources.Count;

    /// <summary>Checks the columns agree in length.</summary>
    /// <exception cref="FusionException">They do not.</exception>
    public void Validate(string where)
    {
        int p = InputIds.Length;
        if (Labels.Length != p || Target.Positions != p || Sources.Any(s => s.Positions != p))
            throw new FusionException($"{where}: columns disagree in length ({p} input ids, {Labels.Length} labels, target {Target.Positions}, sources {string.Join("/", Sources.Select(s => s.Positions))})");
        if (Metrics.Length != Candidates)
            throw new FusionException($"{where}: {Metrics.Length} metrics for {Candidates} candidates");
        if (TokenMetrics is { } tm && (tm.Length != Candidates || tm.Any(m => m is not null && m.Length != p)))
            throw new FusionException($"{where}: per-token metrics do not cover {Candidates} candidates x {p} positions");
    }
}
