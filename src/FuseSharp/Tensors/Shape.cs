using System.Collections;

namespace FuseSharp.Tensors;

/// <summary>
/// An immutable tensor shape in row-major (PyTorch) order. Dimensions are <c>long</c>; the element count is
/// computed with checked arithmetic, so a hostile shape cannot wrap around.
/// </summary>
public readonly struct Shape : IEquatable<Shape>, IReadOnlyList<long>
{
    private readonly long[]? _dims;

    public Shape(params long[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        foreach (var d in dims)
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(dims), $"negative dimension in [{string.Join(", ", dims)}]");
        _dims = (long[])dims.Clone();
    }

    /// <summary>A shape from int dimensions (spans, arrays of int).</summary>
    public static Shape FromInts(ReadOnlySpan<int> dims)
    {
        var d = new long[dims.Length];
        for (int i = 0; i < dims.Length; i++) d[i] = dims[i];
        return new Shape(d);
    }

    /// <summary>The scalar shape <c>[]</c> (one element).</summary>
    public static Shape Scalar => new(Array.Empty<long>());

    public int Rank => _dims?.Length ?? 0;

    public int Count => Rank;

    public long this[int index] => (_dims ?? [])[index];

    public ReadOnlySpan<long> Dims => _dims;

    /// <summary>Number of elements; throws <see cref="OverflowException"/> if it does not fit a long.</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Dims) n = checked(n * d);
            return n;
        }
    }

    /// <summary>Element count, or null if the product overflows a long.</summary>
    public long? TryElementCount()
    {
        long n = 1;
        foreach (var d in Dims)
        {
            if (d != 0 && n > long.MaxValue / d) return null;
            n *= d;
        }
        return n;
    }

    public long[] ToArray() => Dims.ToArray();

    public bool Equals(Shape other) => Dims.SequenceEqual(other.Dims);

    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dims) h.Add(d);
        return h.ToHashCode();
    }

    public static bool operator ==(Shape a, Shape b) => a.Equals(b);

    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);

    public override string ToString() => "[" + string.Join(", ", (_dims ?? []).Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";

    public IEnumerator<long> GetEnumerator() => ((IEnumerable<long>)(_dims ?? [])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
