using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models;

/// <summary>
/// Receives the logits of a forward, position by position, so that a <c>(B, T, V)</c> tensor never has to exist:
/// the engine computes the output projection for the positions the sink wants, in chunks of rows, and hands each
/// row over. <see cref="ConsumeRow"/> is called concurrently for different rows; a sink writes each row's results
/// to its own slots. Combine sinks with <see cref="CompositeSink"/> to get top-k and losses from one pass.
/// </summary>
public abstract class LogitsSink
{
    /// <summary>Called before the output projection; sizes the sink's results.</summary>
    public virtual void Begin(TokenBatch batch, int vocabSize) { }

    /// <summary>True when the logits at (b, t) are needed. Default: real tokens.</summary>
    public virtual bool Wants(TokenBatch batch, int b, int t)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return batch.IsReal(b, t);
    }

    /// <summary>The logits of (b, t) (valid only during the call).</summary>
    public abstract void ConsumeRow(int b, int t, ReadOnlySpan<float> logits);
}

/// <summary>Every position's logits, <c>(B, T, V)</c> (padding positions included, as transformers returns them).</summary>
public sealed class FullLogits : LogitsSink
{
    public float[] Values { get; private set; } = [];

    public int Length { get; private set; }

    public int VocabSize { get; private set; }

    public override void Begin(TokenBatch batch, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Length = batch.Length;
        VocabSize = vocabSize;
        Values = new float[checked(batch.BatchSize * batch.Length * vocabSize)];
    }

    public override bool Wants(TokenBatch batch, int b, int t) => true;

    public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits) => logits.CopyTo(Values.AsSpan((b * Length + t) * VocabSize, VocabSize));

    /// <summary>The logits of one position.</summary>
    public ReadOnlySpan<float> Row(int b, int t) => Values.AsSpan((b * Length + t) * VocabSize, VocabSize);
}

/// <summary>
/// The logits of each row's last real position, <c>(B, V)</c>: what generation needs. <see cref="Values"/> is reused
/// by the next forward of the same shape (a decoding step allocates nothing; copy a row to keep it).
/// </summary>
public sealed class LastLogits : LogitsSink
{
    private int[] _last = [];

    public float[] Values { get; private set; } = [];

    public int VocabSize { get; private set; }

    public override void Begin(TokenBatch batch, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        VocabSize = vocabSize;
        int length = checked(batch.BatchSize * vocabSize);
        if (Values.Length == length) Array.Clear(Values); // rows without a real token stay zeros
        else Values = new float[length];
        if (_last.Length != batch.BatchSize) _last = new int[batch.BatchSize];
        for (int b = 0; b < batch.BatchSize; b++) _last[b] = batch.LastReal(b);
    }

    public override bool Wants(TokenBatch batch, int b, int t) => t == _last[b];

    public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits) => logits.CopyTo(Values.AsSpan(b * VocabSize, VocabSize));

    public Span<float> Row(int b) => Values.AsSpan(b * VocabSize, VocabSize);
}

/// <summary>
/// The k largest logits per real position with their ids, <c>(B, T, k)</c>, sorted descending — FuseLLM's
/// per-step top-k representation (raw logits: no softmax, no temperature). Padding positions hold id −1 and −∞.
/// </summary>
public sealed class TopKLogits : LogitsSink
{
    public TopKLogits(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        K = k;
    }

    public int K { get; }

    public int Length { get; private set; }

    public int[] Ids { get; private set; } = [];

    public float[] Values { get; private set; } = [];

    public override void Begin(TokenBatch batch, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (K > vocabSize) throw new ArgumentException($"top-{K} of a vocabulary of {vocabSize}");
        Length = batch.Length;
        Ids = new int[checked(batch.BatchSize * batch.Length * K)];
        Values = new float[Ids.Length];
        Array.Fill(Ids, -1);
        Array.Fill(Values, float.NegativeInfinity);
    }

    public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits)
    {
        int o = (b * Length + t) * K;
        TopK.Select(logits, Ids.AsSpan(o, K), Values.AsSpan(o, K));
    }
}

/// <summary>
/// Per-position log-probability and cross-entropy of the next token: FuseLLM's <c>per_step_metric_ce</c>, the
/// language-modelling loss, and what perplexity and log-likelihood evaluation sum. The target of position t is
/// the label at t + 1, exactly transformers' shifted causal-LM loss: with explicit labels, −100 means no target and
/// the attention mask plays no part (as in transformers); without labels the targets are the input ids and padded
/// positions have none. Also records whether the target was the argmax (greedy match).
/// </summary>
public sealed class NextTokenLoss : LogitsSink
{
    /// <summary>The label that means "no target" (PyTorch's ignore_index).</summary>
    public const int IgnoreIndex = -100;

    private readonly int[]? _labels;
    private readonly bool _shifted = true;
    private int[] _targets = [];

    /// <param name="labels">Optional <c>(B, T)</c> labels in transformers' convention (aligned with the inputs, shifted
    /// inside, −100 ignored); null to predict the input ids themselves.</param>
    public NextTokenLoss(int[]? labels = null) => _labels = labels;

    private NextTokenLoss(int[] targets, bool shifted)
    {
        _labels = targets;
        _shifted = shifted;
    }

    /// <summary>
    /// Scores explicit per-position targets: <c>targets[b·T + t]</c> is the id position t must predict (−100: none).
    /// Unlike labels, nothing is shifted, so the last input position can be scored too.
    /// </summary>
    public static NextTokenLoss ForTargets(int[] targets) => new(targets ?? throw new ArgumentNullException(nameof(targets)), shifted: false);

    public int BatchSize { get; private set; }

    public int Length { get; private set; }

    /// <summary><c>(B, T)</c> cross-entropy <c>−log p(target)</c>; NaN where a position has no target.</summary>
    public float[] CrossEntropy { get; private set; } = [];

    /// <summary><c>(B, T)</c> log-sum-exp of the logits (the softmax normaliser a backward or KL needs); NaN without a target.</summary>
    public float[] LogSumExp { get; private set; } = [];

    /// <summary><c>(B, T)</c> whether the target is the argmax (ties: the first maximum, as torch.argmax).</summary>
    public bool[] IsGreedy { get; private set; } = [];

    /// <summary><c>(B, T)</c> the target id of each position, −1 where none.</summary>
    public IReadOnlyList<int> Targets => _targets;

    public override void Begin(TokenBatch batch, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_labels is not null && _labels.Length != batch.Ids.Length)
            throw new ArgumentException($"labels have {_labels.Length} entries for a {batch.BatchSize} x {batch.Length} batch");
        BatchSize = batch.BatchSize;
        Length = batch.Length;
        int n = batch.Ids.Length;
        _targets = new int[n];
        CrossEntropy = new float[n];
        LogSumExp = new float[n];
        IsGreedy = new bool[n];
        Array.Fill(CrossEntropy, float.NaN);
        Array.Fill(LogSumExp, float.NaN);
        for (int b = 0; b < batch.BatchSize; b++)
        {
            for (int t = 0; t < batch.Length; t++)
            {
                int i = b * batch.Length + t, target = -1;
                // Explicit labels decide alone (transformers' loss ignores the attention mask); without labels the
                // next real token of a real position is the target.
                bool scored = !_shifted || (t + 1 < batch.Length && (_labels is not null || (batch.IsReal(b, t) && batch.IsReal(b, t + 1))));
                if (scored)
                {
                    int label = !_shifted ? _labels![i] : _labels is null ? batch.Ids[i + 1] : _labels[i + 1];
                    if (label != IgnoreIndex)
                    {
                        if ((uint)label >= (uint)vocabSize)
                            throw new ModelInputException($"label {label} at row {b}, position {(_shifted ? t + 1 : t)} is outside the vocabulary [0, {vocabSize})");
                        target = label;
                    }
                }
                _targets[i] = target;
            }
        }
    }

    public override bool Wants(TokenBatch batch, int b, int t) => _targets[b * Length + t] >= 0;

    public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits)
    {
        int i = b * Length + t, target = _targets[i];
        CrossEntropy[i] = Softmax.CrossEntropy(logits, target, out var lse);
        LogSumExp[i] = lse;
        IsGreedy[i] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits) == target;
    }

    /// <summary>Positions of row <paramref name="b"/> with a target.</summary>
    public int Count(int b) => Enumerable.Range(0, Length).Count(t => _targets[b * Length + t] >= 0);

    /// <summary>Sum of the cross-entropies of row <paramref name="b"/> (nats, in double).</summary>
    public double Sum(int b)
    {
        double s = 0;
        for (int t = 0; t < Length; t++) if (_targets[b * Length + t] >= 0) s += CrossEntropy[b * Length + t];
        return s;
    }

    /// <summary>FuseLLM's sequence <c>metric_ce</c>: the mean CE over the row's targets (NaN when it has none, as 0/0 in the reference).</summary>
    public double SequenceMean(int b)
    {
        int n = Count(b);
        return n == 0 ? double.NaN : Sum(b) / n;
    }

    /// <summary>The mean over every target of the batch: transformers' causal-LM loss.</summary>
    public double Mean
    {
        get
        {
            double s = 0;
            int n = 0;
            for (int b = 0; b < BatchSize; b++) { s += Sum(b); n += Count(b); }
            return n == 0 ? double.NaN : s / n;
        }
    }
}

/// <summary>Several sinks fed from one pass (e.g. top-k and losses for knowledge fusion).</summary>
public sealed class CompositeSink : LogitsSink
{
    private readonly LogitsSink[] _sinks;
    private bool[,] _wants = new bool[0, 0];
    private int _length;

    public CompositeSink(params LogitsSink[] sinks) => _sinks = sinks ?? throw new ArgumentNullException(nameof(sinks));

    public override void Begin(TokenBatch batch, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var s in _sinks) s.Begin(batch, vocabSize);
        _length = batch.Length;
        _wants = new bool[batch.BatchSize * batch.Length, _sinks.Length];
        for (int b = 0; b < batch.BatchSize; b++)
            for (int t = 0; t < batch.Length; t++)
                for (int k = 0; k < _sinks.Length; k++) _wants[b * batch.Length + t, k] = _sinks[k].Wants(batch, b, t);
    }

    public override bool Wants(TokenBatch batch, int b, int t)
    {
        ArgumentNullException.ThrowIfNull(batch);
        for (int k = 0; k < _sinks.Length; k++) if (_wants[b * batch.Length + t, k]) return true;
        return false;
    }

    public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits)
    {
        int row = b * _length + t;
        for (int k = 0; k < _sinks.Length; k++) if (_wants[row, k]) _sinks[k].ConsumeRow(b, t, logits);
    }
}
