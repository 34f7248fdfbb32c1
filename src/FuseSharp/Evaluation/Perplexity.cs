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
        return EvaluateEnsemble([model], documents, blockSize, stride, batchSize, bytes, progress, cancellation);
    }

    /// <summary>
    /// Scores tokenised documents under the <b>probability-averaging ensemble</b> of models that share one vocabulary
    /// (the ensemble baseline of FuseLLM's Table 7): at every position p_ens(y) = (1/M) Σ_m p_m(y), so the ensemble's
    /// NLL of the true token is −ln((1/M) Σ_m exp(−CE_m)), a log-sum-exp of the models' own cross-entropies (no
    /// distribution over the vocabulary needs to be kept). Each model sees exactly the same windows; one model is
    /// plain sliding-window perplexity.
    /// </summary>
    /// <param name="models">One or more models with the same vocabulary size (and, the caller's duty, the same tokenizer).</param>
    /// <param name="documents">Token ids per document.</param>
    /// <param name="blockSize">Window length (at most every model's maximum positions).</param>
    /// <param name="stride">Window step (1 ≤ stride ≤ blockSize); null for blockSize / 2.</param>
    /// <param name="batchSize">Windows per forward.</param>
    /// <param name="bytes">UTF-8 bytes of the documents, for bits per byte (0 if unknown).</param>
    /// <param name="progress">Reports windows.</param>
    /// <param name="cancellation">Checked between batches.</param>
    public static PerplexityResult EvaluateEnsemble(IReadOnlyList<TransformerModel> models, IReadOnlyList<IReadOnlyList<int>> documents, int blockSize, int? stride = null, int batchSize = 4,
        long bytes = 0, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(documents);
        if (models.Count == 0) throw new ArgumentException("an ensemble needs at least one model", nameof(models));
        int vocab = models[0].Spec.VocabSize, maxPositions = models.Min(m => m.Spec.MaxPositions);
        if (models.Any(m => m.Spec.VocabSize != vocab))
            throw new ArgumentException($"the ensemble's models must share one vocabulary (sizes {string.Join(", ", models.Select(m => m.Spec.VocabSize))})", nameof(models));
        if (blockSize < 2 || blockSize > maxPositions)
            throw new ArgumentOutOfRangeException(nameof(blockSize), $"the block size must be between 2 and the model's {maxPositions} positions (got {blockSize})");
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
        double nll = 0, logM = Math.Log(models.Count);
        long scored = 0;
        var losses = new NextTokenLoss[models.Count];
        var terms = new double[models.Count];
        for (int i = 0; i < windows.Count; i += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = windows.Skip(i).Take(batchSize).ToList();
            var batch = TokenBatch.RightPadded(chunk.Select(w => (IReadOnlyList<int>)w.Ids).ToList());
            var labels = TokenBatch.PadRows(chunk.Select(w => (IReadOnlyList<int>)w.Labels).ToList(), batch.Length, NextTokenLoss.IgnoreIndex);
            for (int m = 0; m < models.Count; m++)
            {
                losses[m] = new NextTokenLoss(labels);
                models[m].Forward(batch, losses[m]);
            }
            if (models.Count == 1)
            {
                for (int b = 0; b < chunk.Count; b++) { nll += losses[0].Sum(b); scored += losses[0].Count(b); }
            }
            else
            {
                var targets = losses[0].Targets;
                for (int p = 0; p < targets.Count; p++)
                {
                    if (targets[p] < 0) continue;
                    for (int m = 0; m < models.Count; m++) terms[m] = -losses[m].CrossEntropy[p];
                    // −ln((1/M) Σ exp(−CE_m)) = ln M − logsumexp(−CE), stable for any CE.
                    double max = terms.Max(), sum = 0;
                    foreach (var t in terms) sum += Math.Exp(t - max);
                    nll += logM - (max + Math.Log(sum));
                    scored++;
                }
            }
            task.Advance(chunk.Count);
        }
        if (scored == 0) throw new ArgumentException("nothing to score: every document has fewer than two tokens");
        return new PerplexityResult(documents.Count, tokens, scored, bytes, nll, windows.Count);
    }

    /// <summary>Tokenises <paramref name="texts"/> once and scores them under the probability-averaging ensemble of <paramref name="models"/> (see the ids overload).</summary>
    public static PerplexityResult EvaluateEnsemble(IReadOnlyList<TransformerModel> models, ITokenizer tokenizer, IReadOnlyList<string> texts, int blockSize, int? stride = null, int batchSize = 4,
        bool addSpecialTokens = true, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        var docs = texts.Select(t => (IReadOnlyList<int>)tokenizer.Encode(t, addSpecialTokens).Ids).ToList();
        long bytes = texts.Sum(t => (long)System.Text.Encoding.UTF8.GetByteCount(t));
        return EvaluateEnsemble(models, docs, blockSize, stride, batchSize, bytes, progress, cancellation);
    }

    /// <summary>Tokenises and scores texts (special tokens added as the tokenizer's post-processor does, e.g. BOS).</summary>
    public static PerplexityResult Evaluate(TransformerModel model, ITokenizer tokenizer, IReadOnlyList<string> texts, int blockSize, int? stride = null, int batchSize = 4,
        bool addSpecialTokens = true, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return EvaluateEnsemble([model], tokenizer, texts, blockSize, stride, batchSize, addSpecialTokens, progress, cancellation);
    }
}
