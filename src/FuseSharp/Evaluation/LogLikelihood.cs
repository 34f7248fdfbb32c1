using FuseSharp.Diagnostics;
using FuseSharp.Models;

namespace FuseSharp.Evaluation;

/// <summary>One scoring request: the log-probability of <see cref="Continuation"/> after <see cref="Context"/>.</summary>
public sealed record LogLikelihoodRequest(IReadOnlyList<int> Context, IReadOnlyList<int> Continuation);

/// <summary>Σ log p(continuation tokens | preceding tokens), and whether every continuation token was the argmax.</summary>
public readonly record struct LogLikelihoodResult(double LogLikelihood, bool IsGreedy, int Tokens);

/// <summary>
/// Batched log-likelihood scoring, lm-evaluation-harness's <c>loglikelihood</c>: requests are sorted longest first,
/// packed into right-padded batches and run once; only continuation positions reach the output projection. A
/// sequence longer than the window keeps its last <c>maxLength + 1</c> tokens (the first of them as context only),
/// as the harness truncates.
/// </summary>
public static class LogLikelihood
{
    /// <summary>Scores every request; results are in request order.</summary>
    /// <param name="model">The model.</param>
    /// <param name="requests">Context and continuation ids (the context must not be empty; use BOS/EOS as lm-eval does).</param>
    /// <param name="batchSize">Sequences per forward.</param>
    /// <param name="maxLength">Window in tokens (default: the model's maximum positions).</param>
    /// <param name="progress">Advanced by one per request.</param>
    /// <param name="cancellation">Checked between batches.</param>
    public static LogLikelihoodResult[] Score(TransformerModel model, IReadOnlyList<LogLikelihoodRequest> requests, int batchSize = 8, int? maxLength = null,
        IProgressTask? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        int window = Math.Min(maxLength ?? model.Spec.MaxPositions, model.Spec.MaxPositions);
        var results = new LogLikelihoodResult[requests.Count];
        var order = Enumerable.Range(0, requests.Count)
            .OrderByDescending(i => requests[i].Context.Count + requests[i].Continuation.Count).ThenBy(i => i).ToArray();
        for (int start = 0; start < order.Length; start += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = order.Skip(start).Take(batchSize).ToArray();
            var inputs = new List<IReadOnlyList<int>>();
            var targets = new List<IReadOnlyList<int>>();
            foreach (var i in chunk)
            {
                var r = requests[i];
                if (r.Context.Count == 0) throw new ArgumentException($"request {i} has an empty context");
                if (r.Continuation.Count == 0) throw new ArgumentException($"request {i} has an empty continuation");
                var seq = r.Context.Concat(r.Continuation).ToArray();
                int first = Math.Max(0, seq.Length - 1 - window); // inputs seq[first .. n-2] predict seq[first+1 .. n-1]
                var input = seq[first..^1];
                var target = new int[input.Length];
                for (int t = 0; t < input.Length; t++)
                    target[t] = first + t + 1 >= r.Context.Count ? seq[first + t + 1] : NextTokenLoss.IgnoreIndex;
                inputs.Add(input);
                targets.Add(target);
            }
            var batch = TokenBatch.RightPadded(inputs);
            int len = batch.Length;
            var flatTargets = TokenBatch.PadRows(targets, len, NextTokenLoss.IgnoreIndex);
            var loss = NextTokenLoss.ForTargets(flatTargets);
            model.Forward(batch, loss);
            for (int b = 0; b < chunk.Length; b++)
            {
                double ll = 0;
                bool greedy = true;
                int n = 0;
                for (int t = 0; t < len; t++)
                {
                    int k = b * len + t;
                    if (flatTargets[k] < 0) continue;
                    ll -= loss.CrossEntropy[k];
                    greedy &= loss.IsGreedy[k];
                    n++;
                }
                results[chunk[b]] = new LogLikelihoodResult(ll, greedy, n);
            }
            progress?.Advance(chunk.Length);
        }
        return results;
    }
}
