using FuseSharp.Tensors;
using FuseSharp.Training.Data;
using FuseSharp.Training.Kernels;

namespace FuseSharp.Training;

/// <summary>How the student is compared with a teacher distribution (FuseLLM's <c>distill_loss_type</c>).</summary>
public enum FusionLossKind
{
    /// <summary><c>−Σ_v p(v)·log q(v)</c> (the papers' and READMEs' setting).</summary>
    CrossEntropy,

    /// <summary><c>Σ_v p(v)·(log p(v) − log q(v))</c>: the cross-entropy minus the teacher's entropy; the same gradient.</summary>
    KlDivergence,
}

/// <summary>Which positions the fusion loss averages over (spec fusion.md §7.1).</summary>
public enum FusionLossMask
{
    /// <summary>Every real position (FuseLLM: <c>m = attention_mask</c>, the last position of a block included).</summary>
    AllTokens,

    /// <summary>Positions that predict a supervised token, <c>labels[t+1] ≠ −100</c> (FuseChat v1/v2).</summary>
    SupervisedTokens,
}

/// <summary>How per-position losses are averaged into the loss of one optimizer step.</summary>
public enum LossReduction
{
    /// <summary>
    /// Mean over all predicted positions of the optimizer batch (every micro-batch of the accumulation together), as
    /// transformers computes it since 4.46 (<c>num_items_in_batch</c>): accumulation is then exactly a larger batch.
    /// </summary>
    TokenMean,

    /// <summary>Mean per micro-batch, then the mean over the accumulated micro-batches (transformers before 4.46; FuseLLM/FuseChat's era).</summary>
    MicroBatchMean,
}

/// <summary>
/// The training objective <c>L = λ·L_CLM + (1 − λ)·L_F</c> (spec fusion.md §7.1): <c>L_CLM</c> the causal-LM
/// cross-entropy of the next token over positions whose shifted label is not −100, <c>L_F</c> the cross-entropy (or
/// KL) against the teacher distribution over the positions of <see cref="FusionMask"/>. Plain training is
/// <c>λ = 1</c> with no teacher.
/// </summary>
/// <param name="LmLossWeight">λ (<c>--lm-loss-weight</c>; FuseLLM/FuseChat use 0.9).</param>
/// <param name="FusionLoss">Cross-entropy or KL.</param>
/// <param name="FusionMask">Positions of the fusion term.</param>
/// <param name="Reduction">Averaging over the optimizer batch.</param>
public sealed record ObjectiveOptions(
    double LmLossWeight = 1.0,
    FusionLossKind FusionLoss = FusionLossKind.CrossEntropy,
    FusionLossMask FusionMask = FusionLossMask.AllTokens,
    LossReduction Reduction = LossReduction.TokenMean)
{
    /// <exception cref="TrainingException">λ outside [0, 1].</exception>
    public void Validate()
    {
        if (!(LmLossWeight >= 0 && LmLossWeight <= 1)) throw new TrainingException($"--lm-loss-weight {LmLossWeight} must lie in [0, 1]");
    }
}

/// <summary>The loss of one optimizer step (or an evaluation), with its parts.</summary>
/// <param name="Total"><c>λ·Clm + (1 − λ)·Fusion</c>.</param>
/// <param name="Clm">Causal-LM cross-entropy (mean).</param>
/// <param name="Fusion">Fusion cross-entropy or KL (mean; 0 when no position has a teacher).</param>
/// <param name="ClmPositions">Positions averaged in <paramref name="Clm"/>.</param>
/// <param name="FusionPositions">Positions averaged in <paramref name="Fusion"/>.</param>
public readonly record struct LossParts(double Total, double Clm, double Fusion, long ClmPositions, long FusionPositions)
{
    public bool IsFinite => double.IsFinite(Total) && double.IsFinite(Clm) && double.IsFinite(Fusion);
}

/// <summary>
/// Evaluates the objective for the micro-batches of one optimizer step: <see cref="Begin"/> fixes the per-position
/// weights (which depend on every micro-batch of the step under <see cref="LossReduction.TokenMean"/>), the model
/// hands its logits to <see cref="MicroBatchLoss.Apply"/>, and <see cref="Summarize"/> gives the step's loss.
/// </summary>
public sealed class TrainingObjective
{
    public TrainingObjective(ObjectiveOptions? options = null)
    {
        Options = options ?? new ObjectiveOptions();
        Options.Validate();
    }

    public ObjectiveOptions Options { get; }

    /// <summary>Positions of <paramref name="batch"/> in the causal-LM and fusion averages.</summary>
    public (long Clm, long Fusion) Count(MicroBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        long clm = 0, fusion = 0;
        for (int p = 0; p < batch.PositionCount; p++)
        {
            if (batch.TargetIds[p] != TrainingExample.IgnoreIndex) clm++;
            if (HasFusionTarget(batch, p)) fusion++;
        }
        return (clm, fusion);
    }

    /// <summary>The loss evaluators of one step's micro-batches, with weights normalised as <see cref="ObjectiveOptions.Reduction"/> says.</summary>
    public IReadOnlyList<MicroBatchLoss> Begin(IReadOnlyList<MicroBatch> microBatches)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        double lambda = Options.LmLossWeight;
        var counts = microBatches.Select(Count).ToList();
        var result = new List<MicroBatchLoss>(microBatches.Count);
        long clmTotal = counts.Sum(c => c.Clm), fusionTotal = counts.Sum(c => c.Fusion);
        for (int i = 0; i < microBatches.Count; i++)
        {
            double clmN, fusionN;
            if (Options.Reduction == LossReduction.TokenMean) (clmN, fusionN) = (clmTotal, fusionTotal);
            else (clmN, fusionN) = ((double)counts[i].Clm * microBatches.Count, (double)counts[i].Fusion * microBatches.Count);
            result.Add(new MicroBatchLoss(this, microBatches[i], clmN > 0 ? lambda / clmN : 0, fusionN > 0 ? (1 - lambda) / fusionN : 0, counts[i].Clm, counts[i].Fusion));
        }
        return result;
    }

    /// <summary>The loss of a step from its evaluated micro-batches.</summary>
    public LossParts Summarize(IReadOnlyList<MicroBatchLoss> losses)
    {
        ArgumentNullException.ThrowIfNull(losses);
        double lambda = Options.LmLossWeight;
        long clmN = losses.Sum(l => l.ClmPositions), fusionN = losses.Sum(l => l.FusionPositions);
        if (Options.Reduction == LossReduction.TokenMean || losses.Count == 0)
        {
            double clm = clmN > 0 ? losses.Sum(l => l.ClmSum) / clmN : 0;
            double fusion = fusionN > 0 ? losses.Sum(l => l.FusionSum) / fusionN : 0;
            return new LossParts(lambda * clm + (1 - lambda) * fusion, clm, fusion, clmN, fusionN);
        }
        double c = 0, f = 0;
        foreach (var l in losses)
        {
            c += l.ClmPositions > 0 ? l.ClmSum / l.ClmPositions : 0;
            f += l.FusionPositions > 0 ? l.FusionSum / l.FusionPositions : 0;
        }
        c /= losses.Count;
        f /= losses.Count;
        return new LossParts(lambda * c + (1 - lambda) * f, c, f, clmN, fusionN);
    }

    /// <summary>Whether position <paramref name="p"/> of <paramref name="batch"/> is in the fusion average.</summary>
    internal bool HasFusionTarget(MicroBatch batch, int p)
    {
        int b = p / batch.SequenceLength, t = p % batch.SequenceLength;
        if (t >= batch.Lengths[b] || batch.Distributions[b] is not { } d || d.Offsets[t + 1] == d.Offsets[t]) return false;
        return Options.FusionMask == FusionLossMask.AllTokens || batch.TargetIds[p] != TrainingExample.IgnoreIndex;
    }
}

/// <summary>
/// The objective of one micro-batch. The model calls <see cref="Apply"/> with the logits of consecutive positions
/// (any chunking, any order, from any thread); each call records the per-position losses and, for training,
/// replaces the logits by dL/dlogits. Per-position losses are summed in position order, so the result does not
/// depend on chunking or threads.
/// </summary>
public sealed class MicroBatchLoss
{
    private readonly TrainingObjective _objective;
    private readonly double[] _clm;
    private readonly double[] _fusion;

    internal MicroBatchLoss(TrainingObjective objective, MicroBatch batch, double clmWeight, double fusionWeight, long clmPositions, long fusionPositions)
    {
        _objective = objective;
        Batch = batch;
        ClmWeight = (float)clmWeight;
        FusionWeight = (float)fusionWeight;
        ClmPositions = clmPositions;
        FusionPositions = fusionPositions;
        _clm = new double[batch.PositionCount];
        _fusion = new double[batch.PositionCount];
    }

    public MicroBatch Batch { get; }

    /// <summary>Gradient weight of one causal-LM position (λ over the normaliser).</summary>
    public float ClmWeight { get; }

    /// <summary>Gradient weight of one fusion position ((1 − λ) over the normaliser).</summary>
    public float FusionWeight { get; }

    public long ClmPositions { get; }

    public long FusionPositions { get; }

    /// <summary>Σ of the causal-LM cross-entropy over this micro-batch's positions.</summary>
    public double ClmSum => _clm.Sum();

    /// <summary>Σ of the fusion loss over this micro-batch's positions.</summary>
    public double FusionSum => _fusion.Sum();

    /// <summary>
    /// Evaluates positions <c>[firstPosition, firstPosition + count)</c> whose logits are the rows of
    /// <paramref name="logits"/> <c>(count, vocabSize)</c>. With <paramref name="computeGradient"/> every row is
    /// replaced by dL/dlogits (zero for positions without any target).
    /// </summary>
    public unsafe void Apply(int firstPosition, int count, Span<float> logits, int vocabSize, bool computeGradient = true)
    {
        if (firstPosition < 0 || count < 0 || firstPosition > Batch.PositionCount - count)
            throw new ArgumentOutOfRangeException(nameof(firstPosition), $"positions [{firstPosition}, {firstPosition + count}) outside the micro-batch of {Batch.PositionCount}");
        if (logits.Length != (long)count * vocabSize) throw new ArgumentException($"logits hold {logits.Length} values, expected {count} x {vocabSize}", nameof(logits));
        bool kl = _objective.Options.FusionLoss == FusionLossKind.KlDivergence;
        fixed (float* pl = logits)
        {
            float* l = pl;
            void Row(int i)
            {
                int p = firstPosition + i;
                var row = new Span<float>(l + (long)i * vocabSize, vocabSize);
                int target = Batch.TargetIds[p];
                bool fusion = _objective.HasFusionTarget(Batch, p);
                if (target == TrainingExample.IgnoreIndex && !fusion)
                {
                    if (computeGradient) row.Clear();
                    _clm[p] = 0;
                    _fusion[p] = 0;
                    return;
                }
                ReadOnlySpan<int> ids = default;
                ReadOnlySpan<float> probs = default;
                if (fusion)
                {
                    var d = Batch.Distributions[p / Batch.SequenceLength]!;
                    int t = p % Batch.SequenceLength;
                    ids = d.IdsAt(t);
                    probs = d.ProbabilitiesAt(t);
                }
                var r = CrossEntropyBackward.Row(row, target == TrainingExample.IgnoreIndex ? -1 : target, ClmWeight, ids, probs, FusionWeight, computeGradient);
                _clm[p] = r.TargetLoss;
                _fusion[p] = fusion ? r.SparseCrossEntropy + (kl ? r.SparseNegEntropy : 0) : 0;
            }
            if (Parallelism.MaxThreads <= 1 || count < 2 || (long)count * vocabSize < (1 << 15)) { for (int i = 0; i < count; i++) Row(i); }
            else Parallel.For(0, count, Parallelism.Options, Row);
        }
    }
}
