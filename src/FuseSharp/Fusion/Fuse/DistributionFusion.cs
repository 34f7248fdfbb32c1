namespace FuseSharp.Fusion.Fuse;

/// <summary>How the candidates' distributions are combined (spec §6).</summary>
public enum FusionRule
{
    /// <summary>The candidate with the lowest CE (highest reward) supplies the target (<c>distill_greater_as_gt</c>; the READMEs' setting).</summary>
    MinCe,

    /// <summary>A weighted sum with weights <c>softmax(exp(−CE))</c> (<c>distill_weighted_as_gt</c>).</summary>
    AvgCe,
}

/// <summary>Which CE decides.</summary>
public enum MetricGranularity
{
    /// <summary>One CE per row (document or packed block), as the reference always does. Default.</summary>
    Sequence,

    /// <summary>
    /// Per position, from per-position CEs re-aligned to target positions (a FuseSharp extension, not in the reference):
    /// candidates without a CE at a position (fallback or empty there) do not compete at that position.
    /// </summary>
    Token,
}

/// <summary>Options of <see cref="DistributionFusion.Fuse"/>.</summary>
public sealed record FusionOptions
{
    public FusionRule Rule { get; init; } = FusionRule.MinCe;

    public MetricGranularity Granularity { get; init; } = MetricGranularity.Sequence;

    /// <summary>Teacher temperature T: distributions are <c>softmax(values / T)</c> over each list (the student is never tempered). Default 1.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>The target's own distribution competes (<c>distill_with_ref_model</c>; FuseLLM and FuseChat pairwise runs). Default on.</summary>
    public bool WithTarget { get; init; } = true;

    /// <summary>Source candidates to use (indices into <see cref="FusionRow.Sources"/>); null = all.</summary>
    public IReadOnlyList<int>? Sources { get; init; }

    public FusionPrecision Precision { get; init; } = FusionPrecision.Bf16;
}

/// <summary>The fused target of one row.</summary>
public sealed class FusedRow
{
    internal FusedRow(SparseRows distribution, int[] choice, float[]? weights)
    {
        Distribution = distribution;
        Choice = choice;
        Weights = weights;
    }

    /// <summary>Per position, the target distribution as (id, probability) sorted by id.</summary>
    public SparseRows Distribution { get; }

    /// <summary>Per position, the candidate MinCE chose (0 = target, 1.. = source); -1 for AvgCE.</summary>
    public int[] Choice { get; }

    /// <summary>Sequence-level AvgCE weights per candidate, else null.</summary>
    public float[]? Weights { get; }
}

/// <summary>
/// Builds the fused teacher distribution of a row as the reference trainer and collator do (spec §6, §7.2): each
/// candidate's distribution is <c>softmax(values / T)</c> over its own list only (mass outside the top-k is
/// discarded; a one-hot becomes probability 1; an empty source list copies the target's distribution); MinCE takes
/// the chosen candidate's distribution at every position of the row, AvgCE the weighted sum
/// <c>w0·D0 + w1·D1 + …</c> (in bf16: every product and partial sum rounded, left to right).
/// </summary>
public static class DistributionFusion
{
    /// <summary>Fuses one row.</summary>
    /// <exception cref="FusionException">A sequence-level metric of a used candidate is NaN, or the row is inconsistent.</exception>
    public static FusedRow Fuse(FusionRow row, FusionOptions options, string where = "row")
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(options);
        row.Validate(where);
        if (!(options.Temperature > 0)) throw new FusionException($"temperature must be positive, got {options.Temperature}");
        var candidates = CandidateList(row, options);
        if (candidates.Count == 0) throw new FusionException("no candidates to fuse", "enable the target (--with-target) or at least one source");
        int p = row.Positions;
        var target = Softmax(row.Target, options.Temperature, options.Precision);
        var dists = candidates.Select(c => c == 0 ? target : WithTargetFallback(Softmax(row.Sources[c - 1], options.Temperature, options.Precision), target)).ToArray();

        var choice = new int[p];
        float[]? seqWeights = null;
        if (options.Granularity == MetricGranularity.Sequence)
        {
            var ce = candidates.Select(c => row.Metrics[c]).ToArray();
            for (int q = 0; q < ce.Length; q++)
            {
                if (double.IsNaN(ce[q]))
                    throw new FusionException($"{where}: the CE metric of candidate {Name(candidates[q])} is NaN",
                        "remove such rows first: `fusesharp fuse filter-nan` (a row with no supervised token, or an fp16 overflow)");
            }
            if (options.Rule == FusionRule.MinCe)
            {
                int pick = CandidateSelection.MinCe(ce, options.WithTarget, options.Precision);
                Array.Fill(choice, candidates[pick]);
                return new FusedRow(SortById(dists[pick]), choice, null);
            }
            seqWeights = CandidateSelection.AvgCe(ce, options.Precision);
            Array.Fill(choice, -1);
            var w = new float[p][];
            Array.Fill(w, seqWeights);
            return new FusedRow(Mix(dists, w, options.Precision), choice, ExpandWeights(seqWeights, candidates, row.Candidates));
        }

        // Per-token extension.
        var tm = row.TokenMetrics ?? throw new FusionException($"{where}: per-token fusion needs per-position CEs", "represent with per-token metrics and align them, or use --granularity sequence");
        var perPos = new double[candidates.Count];
        if (options.Rule == FusionRule.MinCe)
        {
            var parts = new SparseRows[p];
            for (int t = 0; t < p; t++)
            {
                for (int q = 0; q < candidates.Count; q++) perPos[q] = tm[candidates[q]] is { } m ? m[t] : double.NaN;
                int pick = CandidateSelection.MinCe(perPos, options.WithTarget, options.Precision);
                choice[t] = candidates[pick];
                parts[t] = dists[pick].Slice(t, 1);
            }
            return new FusedRow(SortById(SparseRows.Concat(parts)), choice, null);
        }
        var weights = new float[p][];
        for (int t = 0; t < p; t++)
        {
            for (int q = 0; q < candidates.Count; q++) perPos[q] = tm[candidates[q]] is { } m ? m[t] : double.NaN;
            weights[t] = perPos.All(double.IsNaN) ? Uniform(candidates.Count) : CandidateSelection.AvgCe(perPos, options.Precision);
        }
        Array.Fill(choice, -1);
        return new FusedRow(Mix(dists, weights, options.Precision), choice, null);
    }

    /// <summary>
    /// Per position, <c>softmax(values / T)</c> over the list, as the collator: in bf16 the values are rounded to bf16,
    /// divided by T in float and rounded again (T = 1 is exact), then softmaxed in float and rounded to bf16. Empty
    /// lists stay empty.
    /// </summary>
    public static SparseRows Softmax(SparseRows lists, float temperature, FusionPrecision precision)
    {
        ArgumentNullException.ThrowIfNull(lists);
        var values = new float[lists.Values.Length];
        Span<float> x = stackalloc float[64];
        for (int t = 0; t < lists.Positions; t++)
        {
            int a = lists.Offsets[t], n = lists.Offsets[t + 1] - a;
            if (n == 0) continue;
            var src = lists.Values.AsSpan(a, n);
            var dst = values.AsSpan(a, n);
            var xs = n <= x.Length ? x[..n] : new float[n];
            bool bf16 = precision == FusionPrecision.Bf16;
            for (int i = 0; i < n; i++)
            {
                float v = bf16 ? CandidateSelection.Bf16(src[i]) : src[i];
                xs[i] = temperature == 1f ? v : bf16 ? CandidateSelection.Bf16(v / temperature) : v / temperature;
            }
            CandidateSelection.Softmax(xs, dst, bf16);
        }
        return new SparseRows(lists.Offsets, lists.Ids, values);
    }

    private static List<int> CandidateList(FusionRow row, FusionOptions options)
    {
        var list = new List<int>();
        if (options.WithTarget) list.Add(0);
        foreach (int s in options.Sources ?? Enumerable.Range(0, row.Sources.Count).ToList())
        {
            if (s < 0 || s >= row.Sources.Count) throw new FusionException($"source {s} does not exist (the rows have {row.Sources.Count} sources)");
            list.Add(s + 1);
        }
        return list;
    }

    private static string Name(int candidate) => candidate == 0 ? "target" : $"source {candidate - 1}";

    private static float[] Uniform(int n)
    {
        var w = new float[n];
        Array.Fill(w, 1f / n);
        return w;
    }

    private static float[] ExpandWeights(float[] weights, List<int> candidates, int total)
    {
        var r = new float[total];
        for (int q = 0; q < candidates.Count; q++) r[candidates[q]] = weights[q];
        return r;
    }

    /// <summary>An empty source list is the "bad case": the collator copies the target's distribution there.</summary>
    private static SparseRows WithTargetFallback(SparseRows source, SparseRows target)
    {
        bool anyEmpty = false;
        for (int t = 0; t < source.Positions && !anyEmpty; t++) anyEmpty = source.Count(t) == 0;
        if (!anyEmpty) return source;
        var parts = new SparseRows[source.Positions];
        for (int t = 0; t < source.Positions; t++) parts[t] = (source.Count(t) == 0 ? target : source).Slice(t, 1);
        return SparseRows.Concat(parts);
    }

    /// <summary>Per position Σ_c w_c · D_c over the union of ids, sorted by id (bf16: each product and partial sum rounded, in candidate order); exact zeros are left out.</summary>
    private static SparseRows Mix(SparseRows[] dists, float[][] weights, FusionPrecision precision)
    {
        int p = dists[0].Positions;
        var offsets = new int[p + 1];
        var ids = new List<int>();
        var values = new List<float>();
        var acc = new SortedDictionary<int, float>();
        for (int t = 0; t < p; t++)
        {
            acc.Clear();
            foreach (var d in dists)
                foreach (int id in d.IdsAt(t)) acc[id] = 0f;
            var keys = acc.Keys.ToArray();
            foreach (int id in keys)
            {
                float sum = 0f;
                for (int c = 0; c < dists.Length; c++)
                {
                    float prob = Lookup(dists[c], t, id);
                    if (precision == FusionPrecision.Bf16)
                    {
                        float product = CandidateSelection.Bf16(weights[t][c] * prob);
                        sum = c == 0 ? product : CandidateSelection.Bf16(sum + product);
                    }
                    else
                    {
                        sum += weights[t][c] * prob;
                    }
                }
                if (sum == 0f) continue; // a zero of the dense target (weight 0, or a product below bf16's range)
                ids.Add(id);
                values.Add(sum);
            }
            offsets[t + 1] = ids.Count;
        }
        return new SparseRows(offsets, [.. ids], [.. values]);
    }

    private static float Lookup(SparseRows d, int t, int id)
    {
        var ids = d.IdsAt(t);
        var vals = d.ValuesAt(t);
        float v = 0f;
        for (int i = 0; i < ids.Length; i++) if (ids[i] == id) v = vals[i]; // scatter_: the last write wins
        return v;
    }

    private static SparseRows SortById(SparseRows d)
    {
        var ids = (int[])d.Ids.Clone();
        var values = (float[])d.Values.Clone();
        for (int t = 0; t < d.Positions; t++)
        {
            int a = d.Offsets[t], n = d.Offsets[t + 1] - a;
            Array.Sort(ids, values, a, n);
        }
        return new SparseRows(d.Offsets, ids, values);
    }
}
