namespace FuseSharp.Fusion;

/// <summary>
/// One scored sequence: for every position t, the k largest logits (descending) and their token ids, and the cross
/// entropy of the actual next token (<c>ce[t] = logsumexp(z_t) − z_t[x_{t+1}]</c>, natural log; the last position has
/// no next token and holds NaN).
/// </summary>
public sealed class ScoredSequence
{
    public ScoredSequence(int[] topKIds, float[] topKLogits, float[] nextTokenCe, int k)
    {
        ArgumentNullException.ThrowIfNull(topKIds);
        ArgumentNullException.ThrowIfNull(topKLogits);
        ArgumentNullException.ThrowIfNull(nextTokenCe);
        if (k <= 0 || topKIds.Length != nextTokenCe.Length * k || topKLogits.Length != topKIds.Length)
            throw new ArgumentException($"scored sequence shapes disagree: {topKIds.Length} ids, {topKLogits.Length} logits, {nextTokenCe.Length} positions at k = {k}");
        TopKIds = topKIds;
        TopKLogits = topKLogits;
        NextTokenCe = nextTokenCe;
        K = k;
    }

    /// <summary>[positions × k], row-major.</summary>
    public int[] TopKIds { get; }

    /// <summary>[positions × k] raw logits (no temperature), descending per position.</summary>
    public float[] TopKLogits { get; }

    /// <summary>[positions]: CE of the next token; NaN at the last position.</summary>
    public float[] NextTokenCe { get; }

    public int K { get; }

    public int Positions => NextTokenCe.Length;
}

/// <summary>
/// What <c>fuse represent</c> needs of a forward engine: batched causal scoring of token-id sequences that returns
/// per-position top-k logits and next-token CE. Implementations choose their own batching, threading and precision;
/// the representation stores top-k logits as float16 (as the reference does) and the CE in float16 per position and
/// float64 per document. The engine in <c>Models/</c> is adapted to this interface.
/// </summary>
public interface ITopKScorer
{
    /// <summary>The model's logit dimension (it may exceed the tokenizer's vocabulary, e.g. Qwen).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence the model takes (its context length).</summary>
    int MaxSequenceLength { get; }

    /// <summary>A description of the model for provenance (name and a fingerprint of its weights and config).</summary>
    string Fingerprint { get; }

    /// <summary>Scores each sequence independently (no attention across sequences).</summary>
    /// <param name="sequences">Token ids; each 1..<see cref="MaxSequenceLength"/> long.</param>
    /// <param name="k">Number of top logits per position (≤ <see cref="VocabSize"/>).</param>
    /// <param name="cancel">Cancellation.</param>
    IReadOnlyList<ScoredSequence> Score(IReadOnlyList<int[]> sequences, int k, CancellationToken cancel = default);
}
