using System.Runtime.CompilerServices;
using System.Text;

namespace FuseSharp.Tensors;

/// <summary>
/// Counter-based random numbers: value <c>i</c> of a stream is a pure function of (key, i), so any element can be
/// drawn independently of the others and results do not depend on thread count or order (the DESIGN's rule for
/// merges: keyed by seed, tensor name and model index). The mixer is SplitMix64's finaliser applied to
/// <c>key + (i + 1) · golden-ratio</c>, which passes BigCrush for sequential counters.
/// </summary>
public readonly struct CounterRandom
{
    private const ulong Golden = 0x9E37_79B9_7F4A_7C15UL;

    public CounterRandom(ulong key) => Key = key;

    /// <summary>A stream keyed by a seed, a name (e.g. a tensor) and an index (e.g. a model).</summary>
    public CounterRandom(long seed, string name, long index = 0)
    {
        ulong h = Mix((ulong)seed ^ 0x5851_F42D_4C95_7F2DUL);
        foreach (var b in Encoding.UTF8.GetBytes(name)) h = Mix(h ^ b);
        Key = Mix(h ^ Mix((ulong)index + Golden));
    }

    public ulong Key { get; }

    /// <summary>A derived stream (e.g. per row, per step) independent of this one.</summary>
    public CounterRandom Derive(long index) => new(Mix(Key ^ Mix((ulong)index * Golden + 0x632B_E59B_D9B4_E019UL)));

    /// <summary>64 random bits for counter <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64(long i) => Mix(Key + ((ulong)i + 1) * Golden);

    /// <summary>Uniform in [0, 1) with 24 random bits (every float32 step is reachable).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float NextSingle(long i) => (NextUInt64(i) >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble(long i) => (NextUInt64(i) >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box-Muller on counters 2i and 2i+1).</summary>
    public double NextGaussian(long i)
    {
        double u1 = 1.0 - NextDouble(2 * i);
        double u2 = NextDouble(2 * i + 1);
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fills <paramref name="destination"/> with uniform [0,1) values for counters offset, offset+1, ...</summary>
    public void FillUniform(Span<float> destination, long offset = 0)
    {
        for (int j = 0; j < destination.Length; j++) destination[j] = NextSingle(offset + j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }
}
