using FuseSharp.Tensors;

namespace FuseSharp.Models;

/// <summary>
/// Keys and values of past tokens for incremental decoding: per layer <c>(B, KV, Capacity, D)</c> F32, plus per
/// slot whether it holds a real token and its position. Each forward with the cache appends its T tokens at slots
/// <c>Length .. Length + T − 1</c>; padded slots stay masked for every later query, so batched generation from
/// right-padded prompts equals generating each row alone. Keys are stored after RoPE.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    private readonly NativeStorage[] _k, _v;

    internal KvCache(int layers, int batchSize, int capacity, int kvHeads, int headDim)
    {
        if (batchSize <= 0 || capacity <= 0) throw new ArgumentException($"a cache needs a positive batch size and capacity (got {batchSize}, {capacity})");
        BatchSize = batchSize;
        Capacity = capacity;
        KvHeads = kvHeads;
        HeadDim = headDim;
        long perLayer = checked((long)batchSize * kvHeads * capacity * headDim * sizeof(float));
        _k = new NativeStorage[layers];
        _v = new NativeStorage[layers];
        try
        {
            for (int l = 0; l < layers; l++)
            {
                _k[l] = new NativeStorage(perLayer, zero: false);
                _v[l] = new NativeStorage(perLayer, zero: false);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
        Valid = new byte[batchSize * capacity];
        Positions = new int[batchSize * capacity];
        NextPosition = new int[batchSize];
    }

    public int BatchSize { get; }

    /// <summary>Slots per row.</summary>
    public int Capacity { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    /// <summary>Slots used (the same for every row).</summary>
    public int Length { get; internal set; }

    /// <summary>Bytes held.</summary>
    public long Bytes => _k.Length * 2L * BatchSize * KvHeads * Capacity * HeadDim * sizeof(float);

    /// <summary><c>(B, Capacity)</c>: 1 where a slot holds a real token.</summary>
    internal byte[] Valid { get; }

    /// <summary><c>(B, Capacity)</c>: the position of each slot's token.</summary>
    internal int[] Positions { get; }

    /// <summary>Per row, the position the next real token gets.</summary>
    internal int[] NextPosition { get; }

    /// <summary>True once some slot holds padding (attention then needs the mask).</summary>
    internal bool HasPadding { get; set; }

    /// <summary>The position the next real token of row <paramref name="b"/> will get.</summary>
    public int NextPositionOf(int b) => NextPosition[b];

    internal float* Keys(int layer) => (float*)_k[layer].Pointer;

    internal float* Values(int layer) => (float*)_v[layer].Pointer;

    /// <summary>Forgets every token (the memory is kept).</summary>
    public void Reset()
    {
        Length = 0;
        HasPadding = false;
        Array.Clear(Valid);
        Array.Clear(Positions);
        Array.Clear(NextPosition);
    }

    public void Dispose()
    {
        foreach (var s in _k) s?.Dispose();
        foreach (var s in _v) s?.Dispose();
    }
}
