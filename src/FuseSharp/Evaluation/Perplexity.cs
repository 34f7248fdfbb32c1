using FuseSharp.Diagnostics;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Evaluation;

/// <summary>Perplexity and bits per byte of a corpus.</summary>
/// <param name="Documents">Documents scored.</param>
/// <param name="Tokens">Tokens in them (special tokens included).</param>
/// <param name="ScoredTokens">Tokens predicted (each document's first token has no context).</param>
/// <param name="Bytes">UTF-8 bytes of the documents' text (0 when scored from ids).</param>
/// <param name="NegativeLogLikelihood">Σ −ln p over scored tokens (nats).</param>
/// <param name="Windows">Forward windows used.</param>
public sealed record PerplexityResult(long Documents, long Tokens, long ScoredTokens, long Bytes, double NegativeLogLikelihood, long Windows)
{
    /// <summary>exp(mean NLL per scored token).</summary>
    public double Perplexity => Math.Exp(NegativeLogLikelihood / ScoredTokens);

    /// <summary>NLL in bits per UTF-8 byte of text: comparable across tokenizers.</summary>
    public double BitsPerByte => Bytes > 0 ? NegativeLogLikelihood / Math.Log(2) / Bytes : double.NaN;

    /// <summary>Mean NLL per scored token in nats.</summary>
    public double MeanNll => NegativeLogLikelihood / ScoredTokens;
}

/// <summary>
/// Sliding-window perplexity as in the transformers perplexity guide (and lm-evaluation-harness's rolling
/// windows): windows of <c>blockSize</c> tokens start every <c>stride</c> tokens; each window scores only the
/// tokens the previous window did not (its first <c>blockSize − stride</c> tokens are context), so every token is
/// predicted exactly once with up to <c>blockSize − 1</c> tokens of context. <c>stride = blockSize</c> gives
/// disjoint blocks. Windows of all documents are batched.
/// </summary>
public static class Perplexity
{
    /// <summary>Scores tokenised documents.</summary>
    /// <param name="model">The model.</param>
    /// <param name="documents">Token ids per document (with BOS if the model expects it).</param>
    /// <param name="blockSize">Window length (at most the model's maximum positions).</param>
    /// <param name="stride">Window step (1 ≤ stride ≤ blockSize); null for blockSize / 2.</param>
    /// <param name="batchSize">Windows per forward.</param>
    /// <param name="bytes">UTF-8 bytes of the documents, for bits per byte (0 if unknown).</param>
    /// <param name="progress">Reports windows.</param>
    /// <param name="cancellation">Checked between batches.</param>
    public static PerplexityResult Evaluate(TransformerModel model, IReadOnlyList<IReadOnlyList<int>> documents, int blockSize, int? stride = null, int batchSize = 4,
        long bytes = 0, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(documents);
        if (blockSize < 2 || blockSize > model.Spec.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(blockSize), $"the block size must be between 2 and the model's {model.Spec.MaxPositions} positions (got {blockSize})");
        int step = stride ?? Math.Max(1, blockSize / 2);
        if (step < 1 || step > blockSize) throw new ArgumentOutOfRangeException(nameof(stride), $"the stride must be between 1 and the block size {blockSize} (got {step})");

        var windows = new List<(int[] Ids, int[] Labels)>();
        long tokens = 0;
        foreach (var doc in documents)
        {
            tokens += doc.Count;
            int prevEnd = 0;
            for (int begin = 0; begin < doc.Count; begin += step)
            {
                int end = Math.Min(begin + blockSize, doc.Count);
                int targetLength = end - prevEnd; // tokens not scored by an earlier window
                var ids = doc.Skip(begin).Take(end - begin).ToArray();
                var labels = (int[])ids.Clone();
                for (int i = 0; i < ids.Length - targetLength; i++) labels[i] = NextTokenLoss.IgnoreIndex;
                if (ids.Length >= 2) windows.Add((ids, labels));
                prevEnd = end;
                if (end == doc.Count) break;
            }
        }
        using var task = (progress ?? NullProgress.Instance).Start("perplexity", windows.Count);
        double nll = 0;
        long scored = 0;
        for (int i = 0; i < windows.Count; i += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = windows.Skip(i).Take(batchSize).ToList();
            var batch = TokenBatch.RightPadded(chunk.Select(w => (IReadOnlyList<int>)w.Ids).ToList());
            var loss = new NextTokenLoss(TokenBatch.PadRows(chunk.Select(w => (IReadOnlyList<int>)w.Labels).ToList(), batch.Length, NextTokenLoss.IgnoreIndex));
            model.Forward(batch, loss);
            for (int b = 0; b < chunk.Count; b++)
            {
                nll += loss.Sum(b);
                scored += loss.Count(b);
            }
            task.Advance(chunk.Count);
        }
        if (scored == 0) throw new ArgumentException("nothing to score: every document has fewer than two tokens");
        return new PerplexityResult(documents.Count, tokens, scored, bytes, nll, windows.Count);
    }

    /// <summary>Tokenises and scores texts (special tokens added as the tokenizer's post-processor does, e.g. BOS).</summary>
    public static PerplexityResult Evaluate(TransformerModel model, ITokenizer tokenizer, IReadOnlyList<string> texts, int blockSize, int? stride = null, int batchSize = 4,
        bool addSpecialTokens = true, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        var docs = texts.Select(t => (IReadOnlyList<int>)tokenizer.Encode(t, addSpecialTokens).Ids).ToList();
        long bytes = texts.Sum(t => (long)System.Text.Encoding.UTF8.GetByteCount(t));
        return Evaluate(model, docs, blockSize, stride, batchSize, bytes, progress, cancellation);
    }
}
