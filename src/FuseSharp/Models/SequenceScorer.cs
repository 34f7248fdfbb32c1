using FuseSharp.Diagnostics;

namespace FuseSharp.Models;

/// <summary>One sequence to score: its ids and, optionally, labels in transformers' convention (−100 = not scored).</summary>
public sealed record ScoringInput(IReadOnlyList<int> Ids, IReadOnlyList<int>? Labels = null);

/// <summary>
/// What knowledge fusion keeps of a model's view of one sequence (FuseLLM's <c>forward_for_logits</c>), real positions
/// only: top-k ids and raw logits per position (sorted, no softmax or temperature), the cross-entropy of each
/// position's next token (<c>per_step_metric_ce</c>; NaN where there is none) and their mean (<c>metric_ce</c>).
/// </summary>
/// <param name="Index">Position of the sequence in the input list.</param>
/// <param name="Length">Tokens in the sequence.</param>
/// <param name="TopKIds">(Length, k) row-major.</param>
/// <param name="TopKLogits">(Length, k) row-major.</param>
/// <param name="CrossEntropy">(Length): −log p(next target) at each position, NaN without a target (always at the last position).</param>
/// <param name="Targets">Positions with a target.</param>
public sealed record SequenceScores(int Index, int Length, int[] TopKIds, float[] TopKLogits, float[] CrossEntropy, int Targets)
{
    /// <summary>Mean cross-entropy over the targets (NaN when there are none: 0/0 as in the reference).</summary>
    public double MetricCe
    {
        get
        {
            double s = 0;
            foreach (var ce in CrossEntropy) if (!float.IsNaN(ce)) s += ce;
            return Targets == 0 ? double.NaN : s / Targets;
        }
    }
}

/// <summary>How <see cref="SequenceScorer"/> batches.</summary>
public sealed record ScoringOptions
{
    /// <summary>Padded tokens per forward (batch size × longest sequence); bounds memory.</summary>
    public int MaxTokensPerBatch { get; init; } = 8192;

    /// <summary>Sequences per forward at most.</summary>
    public int MaxBatchSize { get; init; } = 64;
}

/// <summary>
/// Runs a model over many sequences for knowledge fusion and LM scoring: sequences are sorted by length and packed
/// into right-padded batches under a token budget (little padding, every core busy in each GEMM), each batch is one
/// forward whose output projection feeds the top-k and the cross-entropy in the same pass, and results stream out
/// batch by batch (longest first; <see cref="SequenceScores.Index"/> says which input). Nothing of size
/// (B, T, V) is ever allocated.
/// </summary>
public static class SequenceScorer
{
    /// <summary>Scores <paramref name="inputs"/>; results arrive in batch order.</summary>
    /// <exception cref="ModelInputException">A sequence is empty, has an id outside the vocabulary or is longer than the model allows.</exception>
    public static IEnumerable<SequenceScores> Score(TransformerModel model, IReadOnlyList<ScoringInput> inputs, int topK, ScoringOptions? options = null,
        IProgressTask? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        options ??= new ScoringOptions();
        for (int i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].Ids.Count == 0) throw new ModelInputException($"sequence {i} is empty");
            if (inputs[i].Labels is { } l && l.Count != inputs[i].Ids.Count)
                throw new ArgumentException($"sequence {i}: {l.Count} labels for {inputs[i].Ids.Count} ids", nameof(inputs));
        }
        var order = Enumerable.Range(0, inputs.Count).OrderByDescending(i => inputs[i].Ids.Count).ThenBy(i => i).ToArray();
        return Batches(model, inputs, order, topK, options, progress, cancellation);
    }

    private static IEnumerable<SequenceScores> Batches(TransformerModel model, IReadOnlyList<ScoringInput> inputs, int[] order, int topK, ScoringOptions options,
        IProgressTask? progress, CancellationToken cancellation)
    {
        int k = Math.Min(topK, model.Spec.VocabSize);
        int next = 0;
        while (next < order.Length)
        {
            cancellation.ThrowIfCancellationRequested();
            int longest = inputs[order[next]].Ids.Count;
            int size = Math.Clamp(options.MaxTokensPerBatch / Math.Max(1, longest), 1, options.MaxBatchSize);
            var chunk = order.Skip(next).Take(size).ToArray();
            next += chunk.Length;
            var batch = TokenBatch.RightPadded(chunk.Select(i => inputs[i].Ids).ToList());
            int t = batch.Length;
            int[]? labels = chunk.Any(i => inputs[i].Labels is not null)
                ? TokenBatch.PadRows(chunk.Select(i => inputs[i].Labels ?? inputs[i].Ids).ToList(), t, NextTokenLoss.IgnoreIndex)
                : null;
            var top = new TopKLogits(k);
            var loss = new NextTokenLoss(labels);
            model.Forward(batch, new CompositeSink(top, loss));
            for (int b = 0; b < chunk.Length; b++)
            {
                int len = inputs[chunk[b]].Ids.Count;
                yield return new SequenceScores(chunk[b], len,
                    top.Ids.AsSpan(b * t * k, len * k).ToArray(),
                    top.Values.AsSpan(b * t * k, len * k).ToArray(),
                    loss.CrossEntropy.AsSpan(b * t, len).ToArray(),
                    loss.Count(b));
            }
            progress?.Advance(chunk.Length);
        }
    }
}
