using FuseSharp.Tensors;

namespace FuseSharp.Training.Data;

/// <summary>
/// A fixed, indexable set of training sequences. The trainer draws them in the order of <see cref="DataOrder"/>,
/// so a dataset needs no state of its own; the fusion pipeline plugs its data in by implementing this with
/// <see cref="TrainingExample.Targets"/> filled.
/// </summary>
public interface ITrainingDataset
{
    /// <summary>Number of sequences.</summary>
    int Count { get; }

    /// <summary>Sequence <paramref name="index"/> (0-based). Thread-safe.</summary>
    TrainingExample this[int index] { get; }

    /// <summary>Tokens over all sequences.</summary>
    long TokenCount { get; }

    /// <summary>The longest sequence (checked against the model's max positions before training starts).</summary>
    int MaxLength { get; }

    /// <summary>Where the data came from and how it was prepared (one line, for logs).</summary>
    string Description { get; }
}

/// <summary>Sequences held in a list.</summary>
public sealed class InMemoryDataset : ITrainingDataset
{
    private readonly IReadOnlyList<TrainingExample> _examples;

    public InMemoryDataset(IReadOnlyList<TrainingExample> examples, string description)
    {
        ArgumentNullException.ThrowIfNull(examples);
        _examples = examples;
        Description = description;
        TokenCount = examples.Sum(e => (long)e.Length);
        MaxLength = examples.Count == 0 ? 0 : examples.Max(e => e.Length);
    }

    public int MaxLength { get; }

    public int Count => _examples.Count;

    public TrainingExample this[int index] => _examples[index];

    public long TokenCount { get; }

    public string Description { get; }
}

/// <summary>
/// One token stream cut into consecutive blocks of <see cref="BlockSize"/> tokens, each trained on every next token
/// (labels = input ids), as transformers' <c>run_clm.py</c> <c>group_texts</c> does: the remainder shorter than a
/// block is dropped. Blocks are views created on access; the stream is stored once.
/// </summary>
public sealed class PackedDataset : ITrainingDataset
{
    private readonly int[] _tokens;

    /// <exception cref="ArgumentOutOfRangeException">A block size below 2 (one prediction needs two tokens).</exception>
    public PackedDataset(int[] tokens, int blockSize, string description)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 2);
        _tokens = tokens;
        BlockSize = blockSize;
        Description = description;
        Count = tokens.Length / blockSize;
    }

    public int BlockSize { get; }

    /// <summary>Tokens of the whole stream, the dropped remainder included.</summary>
    public long StreamLength => _tokens.Length;

    public int Count { get; }

    public long TokenCount => (long)Count * BlockSize;

    public int MaxLength => BlockSize;

    public string Description { get; }

    public TrainingExample this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return TrainingExample.LanguageModeling(_tokens.AsSpan(index * BlockSize, BlockSize).ToArray());
        }
    }
}

/// <summary>
/// The order in which the trainer draws sequences: epoch after epoch, each a permutation of the dataset that is a pure
/// function of (seed, epoch) — counter-based Fisher–Yates keyed by the seed and the epoch — so a run resumed at any
/// step draws exactly what an uninterrupted run would have drawn. Without shuffling, the order is the dataset's.
/// </summary>
public sealed class DataOrder
{
    private readonly object _lock = new();
    private long _cachedEpoch = -1;
    private int[] _cached = [];

    public DataOrder(int count, long seed, bool shuffle = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        Count = count;
        Seed = seed;
        Shuffle = shuffle;
    }

    public int Count { get; }

    public long Seed { get; }

    public bool Shuffle { get; }

    /// <summary>The dataset index of the <paramref name="streamIndex"/>-th sequence drawn (0-based, across epochs).</summary>
    public int this[long streamIndex]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(streamIndex);
            long epoch = streamIndex / Count;
            int within = (int)(streamIndex % Count);
            if (!Shuffle) return within;
            lock (_lock)
            {
                if (_cachedEpoch != epoch)
                {
                    _cached = Permutation(epoch);
                    _cachedEpoch = epoch;
                }
                return _cached[within];
            }
        }
    }

    /// <summary>The permutation of epoch <paramref name="epoch"/>.</summary>
    public int[] Permutation(long epoch)
    {
        var p = new int[Count];
        for (int i = 0; i < Count; i++) p[i] = i;
        if (!Shuffle) return p;
        var rng = new CounterRandom(Seed, "data-order", epoch);
        for (int i = Count - 1; i > 0; i--)
        {
            // j uniform in [0, i] by multiply-shift (Lemire): no modulo bias worth naming at these sizes.
            int j = (int)(((UInt128)rng.NextUInt64(i) * (ulong)(i + 1)) >> 64);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
