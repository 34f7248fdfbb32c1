namespace FuseSharp.Training.Data;

/// <summary>
/// Sparse probability distributions over the vocabulary, one per position, in CSR form: position <c>t</c> holds
/// <c>Ids[Offsets[t] .. Offsets[t+1])</c> with <c>Probabilities</c> alongside (the fused top-k teacher of
/// FuseLLM/FuseChat: a handful of ids per position instead of a dense [T, V] target). A position with no entries has
/// no distribution and is left out of the fusion loss.
/// </summary>
public sealed class SparseDistributions
{
    /// <exception cref="ArgumentException">Offsets that are not non-decreasing from 0 to the number of entries, or mismatched lengths.</exception>
    public SparseDistributions(int[] offsets, int[] ids, float[] probabilities)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != ids.Length)
            throw new ArgumentException($"offsets must start at 0 and end at the number of ids ({ids.Length})", nameof(offsets));
        if (ids.Length != probabilities.Length) throw new ArgumentException($"{ids.Length} ids but {probabilities.Length} probabilities", nameof(probabilities));
        for (int t = 1; t < offsets.Length; t++)
            if (offsets[t] < offsets[t - 1]) throw new ArgumentException($"offsets decrease at position {t}", nameof(offsets));
        Offsets = offsets;
        Ids = ids;
        Probabilities = probabilities;
    }

    /// <summary>Positions (the sequence length).</summary>
    public int Count => Offsets.Length - 1;

    public int[] Offsets { get; }

    public int[] Ids { get; }

    public float[] Probabilities { get; }

    public ReadOnlySpan<int> IdsAt(int position) => Ids.AsSpan(Offsets[position], Offsets[position + 1] - Offsets[position]);

    public ReadOnlySpan<float> ProbabilitiesAt(int position) => Probabilities.AsSpan(Offsets[position], Offsets[position + 1] - Offsets[position]);

    /// <summary>Builds the CSR arrays from one list of (id, probability) pairs per position.</summary>
    public static SparseDistributions FromLists(IReadOnlyList<IReadOnlyList<(int Id, float Probability)>> positions)
    {
        ArgumentNullException.ThrowIfNull(positions);
        var offsets = new int[positions.Count + 1];
        for (int t = 0; t < positions.Count; t++) offsets[t + 1] = checked(offsets[t] + positions[t].Count);
        var ids = new int[offsets[^1]];
        var probs = new float[offsets[^1]];
        for (int t = 0; t < positions.Count; t++)
        {
            for (int i = 0; i < positions[t].Count; i++)
            {
                ids[offsets[t] + i] = positions[t][i].Id;
                probs[offsets[t] + i] = positions[t][i].Probability;
            }
        }
        return new SparseDistributions(offsets, ids, probs);
    }
}

/// <summary>
/// One training sequence, Hugging Face style: <see cref="InputIds"/>, <see cref="Labels"/> of the same length
/// (−100 = not a target; the model at position t predicts <c>Labels[t+1]</c>, the shift happens at collation as it
/// does inside a transformers model), and optionally a teacher distribution per position (no shift: the distribution
/// at t already predicts token t+1, like the logits at t).
/// </summary>
public sealed class TrainingExample
{
    /// <summary>The label value of positions that are not trained on (PyTorch's <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    /// <exception cref="ArgumentException">Empty input, or labels/targets of another length.</exception>
    public TrainingExample(int[] inputIds, int[] labels, SparseDistributions? targets = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(labels);
        if (inputIds.Length == 0) throw new ArgumentException("a training example needs at least one token", nameof(inputIds));
        if (labels.Length != inputIds.Length) throw new ArgumentException($"{labels.Length} labels for {inputIds.Length} input ids", nameof(labels));
        if (targets is not null && targets.Count != inputIds.Length)
            throw new ArgumentException($"{targets.Count} target distributions for {inputIds.Length} input ids", nameof(targets));
        InputIds = inputIds;
        Labels = labels;
        Targets = targets;
    }

    /// <summary>An example trained on every next token (labels = input ids).</summary>
    public static TrainingExample LanguageModeling(int[] inputIds) => new(inputIds, inputIds);

    public int[] InputIds { get; }

    public int[] Labels { get; }

    /// <summary>Teacher distributions per position (fusion), or null.</summary>
    public SparseDistributions? Targets { get; }

    public int Length => InputIds.Length;

    /// <summary>Positions with a next-token target (<c>Labels[t+1] ≠ −100</c>).</summary>
    public int PredictedCount
    {
        get
        {
            int n = 0;
            for (int t = 1; t < Labels.Length; t++)
                if (Labels[t] != IgnoreIndex) n++;
            return n;
        }
    }
}
