namespace FuseSharp.Training.Data;

/// <summary>
/// A micro-batch as the model consumes it: <c>B</c> sequences right-padded to a common length <c>T</c>, flattened
/// row-major to <c>B·T</c> positions (position <c>b·T + t</c>). Right padding keeps causal attention exact for the
/// real tokens (a padded slot comes after every real one); padded positions carry no target and are left out of
/// every loss. Positions restart at 0 in each row.
/// </summary>
public sealed class MicroBatch
{
    private MicroBatch(int batchSize, int sequenceLength, int[] inputIds, int[] lengths, int[] targetIds, SparseDistributions?[] distributions)
    {
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        Lengths = lengths;
        TargetIds = targetIds;
        Distributions = distributions;
    }

    /// <summary>B.</summary>
    public int BatchSize { get; }

    /// <summary>T, the longest sequence of the batch.</summary>
    public int SequenceLength { get; }

    /// <summary>Token ids <c>(B, T)</c>, padding included.</summary>
    public int[] InputIds { get; }

    /// <summary>Real tokens per row <c>(B)</c>; slots past a row's length are padding.</summary>
    public int[] Lengths { get; }

    /// <summary>
    /// Next-token target of every position <c>(B, T)</c>: <c>labels[b, t+1]</c>, or −100 on the last real position,
    /// on padding and where the label is −100 (the shift of transformers' <c>ForCausalLMLoss</c>).
    /// </summary>
    public int[] TargetIds { get; }

    /// <summary>Teacher distributions per row (fusion), or null entries.</summary>
    public SparseDistributions?[] Distributions { get; }

    /// <summary>B·T.</summary>
    public int PositionCount => BatchSize * SequenceLength;

    /// <summary>Real tokens in the batch (what tokens/s counts).</summary>
    public long TokenCount => Lengths.Sum(l => (long)l);

    /// <summary>True when any row has teacher distributions.</summary>
    public bool HasDistributions => Distributions.Any(d => d is not null);

    /// <summary>Row <paramref name="b"/>'s length.</summary>
    public int LengthOf(int b) => Lengths[b];

    /// <summary>
    /// Pads and stacks <paramref name="examples"/>. <paramref name="padId"/> fills the padded slots (it never reaches
    /// a loss; any id the embedding accepts will do).
    /// </summary>
    public static MicroBatch Collate(IReadOnlyList<TrainingExample> examples, int padId)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("a micro-batch needs at least one example", nameof(examples));
        int b = examples.Count;
        int t = examples.Max(e => e.Length);
        var ids = new int[checked(b * t)];
        var targets = new int[b * t];
        var lengths = new int[b];
        var dists = new SparseDistributions?[b];
        Array.Fill(ids, padId);
        Array.Fill(targets, TrainingExample.IgnoreIndex);
        for (int r = 0; r < b; r++)
        {
            var e = examples[r];
            lengths[r] = e.Length;
            dists[r] = e.Targets;
            e.InputIds.CopyTo(ids, r * t);
            for (int p = 0; p + 1 < e.Length; p++) targets[r * t + p] = e.Labels[p + 1];
        }
        return new MicroBatch(b, t, ids, lengths, targets, dists);
    }
}
