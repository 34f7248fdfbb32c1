using System.Numerics.Tensors;
using FuseSharp.Tensors;

namespace FuseSharp.Evaluation;

/// <summary>
/// The logits processors of generation, in transformers' order and with its semantics: repetition penalty
/// (CTRL, Keskar et al. 2019, https://arxiv.org/abs/1909.05858), then temperature, top-k and top-p (nucleus,
/// Holtzman et al. 2019, https://arxiv.org/abs/1904.09751), then a draw. Filtered entries become −∞. Draws use a
/// counter-based stream (<see cref="CounterRandom"/>), so a seed reproduces a run on any machine and thread count.
/// </summary>
public static class Sampling
{
    /// <summary>
    /// For every id in <paramref name="seen"/> (each once): a positive logit is divided by the penalty, a negative
    /// one multiplied (transformers' RepetitionPenaltyLogitsProcessor). Penalty 1 changes nothing.
    /// </summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IEnumerable<int> seen, float penalty)
    {
        ArgumentNullException.ThrowIfNull(seen);
        if (penalty <= 0) throw new ArgumentOutOfRangeException(nameof(penalty), "the repetition penalty must be positive");
        if (penalty == 1f) return;
        foreach (int id in seen.Distinct())
        {
            if ((uint)id >= (uint)logits.Length) continue;
            float v = logits[id];
            logits[id] = v < 0 ? v * penalty : v / penalty;
        }
    }

    /// <summary>Divides the logits by <paramref name="temperature"/> (&gt; 0).</summary>
    public static void ApplyTemperature(Span<float> logits, float temperature)
    {
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), "the temperature must be positive (use greedy decoding for 0)");
        if (temperature != 1f) TensorPrimitives.Divide(logits, temperature, logits);
    }

    /// <summary>Keeps the entries ≥ the k-th largest logit (ties at the boundary stay, as in transformers); k ≤ 0 keeps all.</summary>
    public static void ApplyTopK(Span<float> logits, int k)
    {
        if (k <= 0 || k >= logits.Length) return;
        var ids = new int[k];
        var vals = new float[k];
        Tensors.Kernels.TopK.Select(logits, ids, vals);
        float kth = vals[k - 1];
        for (int i = 0; i < logits.Length; i++) if (logits[i] < kth) logits[i] = float.NegativeInfinity;
    }

    /// <summary>
    /// Nucleus filtering as transformers' TopPLogitsWarper: sort ascending, accumulate the softmax, drop the entries
    /// whose cumulative probability is ≤ 1 − p, always keeping the most likely one. p ≥ 1 keeps all.
    /// </summary>
    public static void ApplyTopP(Span<float> logits, float p)
    {
        if (p >= 1f) return;
        if (!(p > 0)) throw new ArgumentOutOfRangeException(nameof(p), "top-p must be in (0, 1]");
        var probs = logits.ToArray();
        Tensors.Kernels.Softmax.Forward(probs, probs);
        var order = Enumerable.Range(0, logits.Length).ToArray();
        var keys = logits.ToArray();
        Array.Sort(keys, order); // ascending
        double cumulative = 0;
        for (int i = 0; i < order.Length - 1; i++) // the last (largest) entry is always kept
        {
            cumulative += probs[order[i]];
            if (cumulative <= 1 - (double)p) logits[order[i]] = float.NegativeInfinity;
            else break;
        }
    }

    /// <summary>Draws an index from softmax(logits) with the uniform number <paramref name="u"/> in [0, 1).</summary>
    public static int Draw(ReadOnlySpan<float> logits, double u)
    {
        float max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max) || float.IsNaN(max)) throw new InvalidOperationException("every token was filtered out or the logits are NaN");
        double total = 0;
        foreach (var v in logits) total += Math.Exp(v - max);
        double target = u * total, acc = 0;
        int last = -1;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            acc += Math.Exp(logits[i] - max);
            last = i;
            if (acc > target) return i;
        }
        return last; // rounding left target at the very end
    }

    /// <summary>The first index of the largest logit (torch.argmax).</summary>
    public static int Greedy(ReadOnlySpan<float> logits) => TensorPrimitives.IndexOfMax(logits);
}
