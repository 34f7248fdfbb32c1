using System.Numerics;
using FuseSharp.Merging.Methods;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// A position in the total order used to cut ties: by value, then by element index. A mask "keep keys in
/// [Low, High]" keeps exactly a given number of elements even when values repeat at the boundary.
/// </summary>
public readonly record struct MaskKey(float Value, long Index)
{
    public static readonly MaskKey Min = new(float.NegativeInfinity, long.MinValue);
    public static readonly MaskKey Max = new(float.PositiveInfinity, long.MaxValue);

    /// <summary>(value, index) &lt;= (other.Value, other.Index), lexicographically.</summary>
    public bool AtMost(float value, long index) => value < Value || (value == Value && index <= Index);

    /// <summary>(value, index) &gt;= this, lexicographically.</summary>
    public bool AtLeast(float value, long index) => value > Value || (value == Value && index >= Index);
}

/// <summary>One bit per element; chunk-aligned words (a chunk of <see cref="Chunked.Size"/> elements owns whole words, so chunks can be filled in parallel).</summary>
public sealed class BitMask
{
    private readonly ulong[] _words;

    public BitMask(long count)
    {
        Count = count;
        _words = new ulong[(count + 63) / 64];
    }

    public long Count { get; }

    /// <summary>The words covering elements [start, start + length) (start a multiple of 64).</summary>
    public Span<ulong> Words(long start, int length)
    {
        if ((start & 63) != 0) throw new ArgumentException("start must be a multiple of 64", nameof(start));
        return _words.AsSpan((int)(start / 64), (length + 63) / 64);
    }

    public bool Get(long i) => (_words[i >> 6] & (1UL << (int)(i & 63))) != 0;

    /// <summary>The backing words (for kernels that index them directly).</summary>
    internal ulong[] RawWords => _words;

    /// <summary>Sets bit <paramref name="i"/> with an atomic OR (safe when neighbouring bits are set from other threads).</summary>
    public void SetAtomic(long i) => Interlocked.Or(ref _words[i >> 6], 1UL << (int)(i & 63));
}

/// <summary>
/// Which elements of one model's delta a sparsifier keeps, and how kept values are rescaled: everything, a key
/// range on |delta| (magnitude top-k, breadcrumbs), or an explicit bitmask (DARE, DELLA), times a scalar factor
/// or a per-element factor (DELLA's inverse keep probability).
/// </summary>
public sealed class SparseMask
{
    private SparseMask(long count) => Count = count;

    public long Count { get; }

    /// <summary>Keep elements whose (|delta|, index) lies in [Low, High] (when <see cref="Bits"/> is null and this is not <see cref="IsAll"/>).</summary>
    public MaskKey Low { get; private init; } = MaskKey.Min;

    public MaskKey High { get; private init; } = MaskKey.Max;

    public BitMask? Bits { get; private init; }

    public bool IsAll { get; private init; }

    /// <summary>Number of elements kept.</summary>
    public long Kept { get; init; }

    /// <summary>Factor applied to kept values (norm-matching or inverse density).</summary>
    public float Scale { get; set; } = 1f;

    /// <summary>Per-element factor (inverse keep probability), or null.</summary>
    public FloatBuffer? ElementScale { get; set; }

    public double KeptFraction => Count == 0 ? 1 : (double)Kept / Count;

    public static SparseMask All(long count) => new(count) { IsAll = true, Kept = count };

    public static SparseMask Range(long count, MaskKey low, MaskKey high, long kept) => new(count) { Low = low, High = high, Kept = kept };

    public static SparseMask FromBits(BitMask bits, long kept) => new(bits.Count) { Bits = bits, Kept = kept };

    /// <summary>Effectively computes <c>delta[i] = keep(start + i) ? delta[i] * scale(start + i) : 0</c>.</summary>
    public void Apply(Span<float> delta, long start)
    {
        if (!IsAll)
        {
            if (Bits is not null) ApplyBits(delta, Bits.Words(start, delta.Length));
            else ApplyRange(delta, start, Low, High);
        }
        if (ElementScale is not null)
            System.Numerics.Tensors.TensorPrimitives.Multiply(delta, ElementScale.Slice(start, delta.Length), delta);
        else if (Scale != 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(delta, Scale, delta);
    }

    /// <summary>Zeroes the elements whose bit is clear.</summary>
    public static void ApplyBits(Span<float> delta, ReadOnlySpan<ulong> words)
    {
        for (int w = 0; w < words.Length; w++)
        {
            ulong bits = words[w];
            if (bits == ulong.MaxValue) continue;
            int baseIndex = w * 64, n = Math.Min(64, delta.Length - baseIndex);
            if (bits == 0)
            {
                delta.Slice(baseIndex, n).Clear();
                continue;
            }
            for (int j = 0; j < n; j++)
                if ((bits & (1UL << j)) == 0) delta[baseIndex + j] = 0;
        }
    }

    /// <summary>Zeroes the elements whose (|value|, index) is outside [low, high]; vectorised, boundary ties handled per element.</summary>
    public static void ApplyRange(Span<float> delta, long start, MaskKey low, MaskKey high)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var lo = new Vector<float>(low.Value);
            var hi = new Vector<float>(high.Value);
            for (; i <= delta.Length - w; i += w)
            {
                var x = new Vector<float>(delta.Slice(i, w));
                var a = Vector.Abs(x);
                var boundary = Vector.Equals(a, lo) | Vector.Equals(a, hi);
                if (!Vector.EqualsAll(boundary, Vector<int>.Zero))
                {
                    for (int j = i; j < i + w; j++) if (!InRange(Math.Abs(delta[j]), start + j, low, high)) delta[j] = 0;
                    continue;
                }
                var inside = Vector.GreaterThan(a, lo) & Vector.LessThan(a, hi);
                Vector.ConditionalSelect(inside, x, Vector<float>.Zero).CopyTo(delta.Slice(i, w));
            }
        }
        for (; i < delta.Length; i++)
            if (!InRange(Math.Abs(delta[i]), start + i, low, high)) delta[i] = 0;
    }

    /// <summary>The scalar rule: low &lt;= (value, index) &lt;= high.</summary>
    public static bool InRange(float value, long index, MaskKey low, MaskKey high) => low.AtLeast(value, index) && high.AtMost(value, index);
}
