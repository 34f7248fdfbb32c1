using FuseSharp.Diagnostics;
using FuseSharp.Models;

namespace FuseSharp.Fusion;

/// <summary>
/// What <c>fuse represent</c> needs of a forward engine: batched causal scoring of token-id sequences that returns,
/// per position, the top-k raw logits with their ids and the cross entropy of the next token
/// (<see cref="SequenceScores"/>). Implementations choose their own batching, threading and precision; the
/// representation stores top-k logits as float16 (as the reference does) and the CE in float16 per position and float64
/// per document. <see cref="ModelTopKScorer"/> runs the engine in <c>Models/</c>.
/// </summary>
public interface ITopKScorer
{
    /// <summary>The model's logit dimension (it may exceed the tokenizer's vocabulary, e.g. Qwen).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence the model takes (its context length).</summary>
    int MaxSequenceLength { get; }

    /// <summary>A description of the model for provenance (a fingerprint of its config and weights; no paths).</summary>
    string Fingerprint { get; }

    /// <summary>Scores each sequence independently (no attention across sequences), every position's next token.</summary>
    /// <param name="sequences">Token ids; each 1..<see cref="MaxSequenceLength"/> long.</param>
    /// <param name="k">Number of top logits per position (≤ <see cref="VocabSize"/>).</param>
    /// <param name="progress">Advanced by one per sequence scored (optional).</param>
    /// <param name="cancel">Cancellation.</param>
    /// <returns>One result per sequence, in input order (<see cref="SequenceScores.Index"/> = position in the list);
    /// the cross entropy of the last position is NaN.</returns>
    IReadOnlyList<SequenceScores> Score(IReadOnlyList<int[]> sequences, int k, IProgressTask? progress = null, CancellationToken cancel = default);
}
