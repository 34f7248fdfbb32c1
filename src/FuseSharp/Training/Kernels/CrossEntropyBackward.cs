using System.Numerics.Tensors;

namespace FuseSharp.Training.Kernels;

/// <summary>The loss terms of one row of logits (float64).</summary>
/// <param name="LogSumExp"><c>lse = log Σ_v exp(z_v)</c>.</param>
/// <param name="TargetLoss"><c>lse − z[target]</c> (0 without a target).</param>
/// <param name="SparseCrossEntropy"><c>−Σ_i p_i log softmax(z)[id_i] = (Σ_i p_i)·lse − Σ_i p_i z[id_i]</c> (0 without a distribution).</param>
/// <param name="SparseNegEntropy"><c>Σ_i p_i log p_i</c> (entries with p = 0 contribute 0), so that KL(p‖q) = SparseCrossEntropy + SparseNegEntropy.</param>
public readonly record struct RowLoss(double LogSumExp, double TargetLoss, double SparseCrossEntropy, double SparseNegEntropy);

/// <summary>
/// Softmax cross-entropy of one row of logits <c>z: (V)</c> against a hard target id and/or a sparse target
/// distribution (ids + probabilities, the fused top-k teacher of FuseLLM/FuseChat), and its gradient written over
/// the logits (llm.c's fused <c>crossentropy_softmax_backward</c>: the [V] row becomes dL/dz, so the [T, V] logits
/// buffer is reused and no dense target is ever built):
/// <code>
/// dz = (a + b·Σp)·softmax(z) − a·onehot(target) − b·scatter(ids, p)
/// </code>
/// for loss weights <c>a</c> (hard target) and <c>b</c> (distribution). With <c>Σp = 1</c> this is the familiar
/// <c>softmax(z) − p</c>; probabilities are used as given (rounded teacher distributions need not sum to 1, and
/// <c>torch.nn.functional.cross_entropy</c> with probability targets does not renormalise them either). The KL
/// divergence has the same gradient as the cross-entropy (they differ by the teacher's entropy, a constant).
/// <para>The sum of exponentials is accumulated per block of 1024 in float and across blocks in float64, with the
/// row maximum subtracted first (no overflow for any finite row).</para>
/// </summary>
public static class CrossEntropyBackward
{
    private const int Block = 1024;

    /// <summary>
    /// The loss terms of row <paramref name="logits"/> and, when <paramref name="computeGradient"/>, dL/dz written over
    /// it for <c>L = targetWeight·TargetLoss + sparseWeight·SparseCrossEntropy</c>.
    /// </summary>
    /// <param name="logits">One row <c>z: (V)</c>; overwritten by the gradient when <paramref name="computeGradient"/>.</param>
    /// <param name="target">Hard target id, or negative for none.</param>
    /// <param name="targetWeight">Weight <c>a</c> of the hard-target loss in the gradient.</param>
    /// <param name="ids">Ids of the sparse distribution (may be empty); an id may appear once.</param>
    /// <param name="probabilities">Their probabilities (same length as <paramref name="ids"/>).</param>
    /// <param name="sparseWeight">Weight <c>b</c> of the sparse cross-entropy in the gradient.</param>
    /// <param name="computeGradient">Write the gradient; otherwise the logits are left unchanged.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id or the target outside [0, V).</exception>
    public static RowLoss Row(Span<float> logits, int target, float targetWeight, ReadOnlySpan<int> ids, ReadOnlySpan<float> probabilities,
        float sparseWeight, bool computeGradient)
    {
        int v = logits.Length;
        if (ids.Length != probabilities.Length) throw new ArgumentException($"{ids.Length} ids but {probabilities.Length} probabilities", nameof(probabilities));
        if (target >= v) throw new ArgumentOutOfRangeException(nameof(target), $"target {target} outside the vocabulary of {v}");
        double zTarget = target >= 0 ? logits[target] : 0;
        double pSum = 0, pz = 0, negEntropy = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), $"distribution id {ids[i]} outside the vocabulary of {v}");
            double p = probabilities[i];
            pSum += p;
            pz += p * logits[ids[i]];
            if (p > 0) negEntropy += p * Math.Log(p);
        }
        float max = TensorPrimitives.Max(logits);
        double sum;
        if (computeGradient)
        {
            // z ← exp(z − max) in place; normalised below.
            TensorPrimitives.Subtract(logits, max, logits);
            TensorPrimitives.Exp(logits, logits);
            sum = BlockSum(logits);
        }
        else
        {
            sum = SumExpShifted(logits, max);
        }
        double lse = max + Math.Log(sum);
        var loss = new RowLoss(lse, target >= 0 ? lse - zTarget : 0, ids.Length > 0 ? pSum * lse - pz : 0, negEntropy);
        if (computeGradient)
        {
            float scale = (float)((targetWeight * (target >= 0 ? 1.0 : 0.0) + sparseWeight * pSum) / sum);
            TensorPrimitives.Multiply(logits, scale, logits);
            if (target >= 0) logits[target] -= targetWeight;
            for (int i = 0; i < ids.Length; i++) logits[ids[i]] -= sparseWeight * probabilities[i];
        }
        return loss;
    }

    /// <summary>The float64 scalar reference of <see cref="Row"/> (gradient into <paramref name="gradient"/>, logits untouched).</summary>
    public static RowLoss RowReference(ReadOnlySpan<float> logits, int target, double targetWeight, ReadOnlySpan<int> ids, ReadOnlySpan<float> probabilities,
        double sparseWeight, Span<double> gradient)
    {
        double max = double.NegativeInfinity;
        foreach (var z in logits) max = Math.Max(max, z);
        double sum = 0;
        foreach (var z in logits) sum += Math.Exp(z - max);
        double lse = max + Math.Log(sum);
        double pSum = 0, pz = 0, negEntropy = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            pSum += probabilities[i];
            pz += probabilities[i] * (double)logits[ids[i]];
            if (probabilities[i] > 0) negEntropy += probabilities[i] * Math.Log(probabilities[i]);
        }
        if (!gradient.IsEmpty)
        {
            double a = target >= 0 ? targetWeight : 0;
            for (int j = 0; j < logits.Length; j++) gradient[j] = (a + sparseWeight * pSum) * Math.Exp(logits[j] - lse);
            if (target >= 0) gradient[target] -= targetWeight;
            for (int i = 0; i < ids.Length; i++) gradient[ids[i]] -= sparseWeight * probabilities[i];
        }
        return new RowLoss(lse, target >= 0 ? lse - logits[target] : 0, ids.Length > 0 ? pSum * lse - pz : 0, negEntropy);
    }

    private static double BlockSum(ReadOnlySpan<float> x)
    {
        double total = 0;
        for (int i = 0; i < x.Length; i += Block) total += TensorPrimitives.Sum(x.Slice(i, Math.Min(Block, x.Length - i)));
        return total;
    }

    private static double SumExpShifted(ReadOnlySpan<float> x, float shift)
    {
        Span<float> tmp = stackalloc float[Block];
        double total = 0;
        for (int i = 0; i < x.Length; i += Block)
        {
            var src = x.Slice(i, Math.Min(Block, x.Length - i));
            var dst = tmp[..src.Length];
            TensorPrimitives.Subtract(src, shift, dst);
            TensorPrimitives.Exp(dst, dst);
            total += TensorPrimitives.Sum(dst);
        }
        return total;
    }
}
