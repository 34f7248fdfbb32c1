using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Merging.Kernels;

/// <summary>
/// DELLA's keep decisions for one row without ranking it. DELLA keeps element i of a row of n independently with
/// probability p(r_i) = pBase + pStep · r_i, r_i its stable ascending rank of |Δ| (ties by index: (key, index)
/// lexicographic). An exact sampler of that distribution needs no rank: with u_i the element's uniform 32-bit draw,
/// T(r) the 32-bit threshold of p(r) (<see cref="Threshold"/>) and D = T(n − 1) − T(0),
/// <list type="bullet">
/// <item>u_i &lt; T(0): keep; u_i ≥ T(n − 1): drop;</item>
/// <item>otherwise (a "candidate", probability D / 2^32 ≈ 2ε) pick J uniformly among the n − 1 other elements of the
/// row and keep iff (key_i, i) &gt; (key_J, J), i.e. r_i &gt; r_J.</item>
/// </list>
/// Of the n − 1 others exactly r_i come before i, so P(keep | candidate) = r_i / (n − 1) and P(keep) =
/// T(0)/2^32 + (D/2^32) · r_i/(n − 1) = p(r_i); each decision uses only its own draw and the fixed keys, so the
/// decisions stay independent. J comes from the same draw: given a candidate, x = u_i − T(0) is uniform on [0, D),
/// and J0 = ⌊x (n − 1) / D⌋ (exact integer arithmetic; J = J0, or J0 + 1 from i on) is uniform up to quantisation:
/// each J0 takes ⌊D/(n − 1)⌋ or ⌈D/(n − 1)⌉ of the D values, so P(keep) is off from p(r_i) by at most
/// min(r_i, n − 1 − r_i) / 2^32 (below n / 2^33 absolute; the thresholds themselves round p to 2^−32). Per element: the
/// draw, two compares, and for the candidates a multiply-high, one gathered key and a compare; no ranks, no sort.
/// These masks differ, seed for seed, from builds that compared each draw with the threshold of its exact rank: the
/// distribution is the same, the draws are consumed differently.
/// </summary>
public static class DellaRow
{
    /// <summary>
    /// Keep probability p(rank) = pBase + pStep · rank in 64-bit fixed point (p · 2^64), for integer-only thresholds.
    /// Needs pBase + pStep · (cols − 1) &lt; 1, which DELLA's validation guarantees (density + ε &lt; 1).
    /// </summary>
    public readonly record struct Probability(ulong Base, ulong Step)
    {
        public static Probability Of(double pBase, double pStep) => new(ToFixed(pBase), ToFixed(pStep));

        private static ulong ToFixed(double p) => p <= 0 ? 0 : p >= 1 ? ulong.MaxValue : (ulong)(p * 18446744073709551616.0);
    }

    /// <summary>The 32-bit keep threshold for rank r: the top half of <c>Base + Step · r</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Threshold(Probability p, int rank) => (uint)((p.Base + p.Step * (ulong)rank) >> 32);

    /// <summary>The uniform draw of element <paramref name="e"/> (the same stream DARE's masks use).</summary>
    public static uint Draw(UniformStream rng, long e) => rng.At(e);

    /// <summary>
    /// The other element a candidate of row length <paramref name="n"/> at index <paramref name="i"/> is compared with:
    /// <c>J0 = ⌊x (n − 1) / d⌋</c> for its offset <paramref name="x"/> &lt; <paramref name="d"/> into the candidate
    /// interval, skipping i itself.
    /// </summary>
    public static int Other(int i, uint x, uint d, int n)
    {
        int j0 = (int)((ulong)x * (ulong)(n - 1) / d);
        return j0 + (j0 >= i ? 1 : 0);
    }

    /// <summary>
    /// Sets bit j of <paramref name="keep"/> (words of 64, bit j of the row in word j / 64; the row's words are
    /// overwritten) by the sampler of the class notes for the row <paramref name="values"/> (keys
    /// <c>bits(values[j]) &amp; 0x7FFF_FFFF</c>, so the order of |values|, −0 = +0) with the draws of elements
    /// <paramref name="start"/> + j. Returns the number kept.
    /// </summary>
    public static unsafe int Decide(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<ulong> keep)
    {
        int n = values.Length, words = (n + 63) / 64, j = 0;
        if (keep.Length < words) throw new ArgumentException("keep needs (n + 63) / 64 words", nameof(keep));
        keep[..words].Clear();
        if (n == 0) return 0;
        uint t0 = Threshold(p, 0), d = Threshold(p, n - 1) - t0;
        // Candidates find J0 by a multiply-high (Reciprocal); when d <= n − 1 (ε below about n / 2^33) they divide.
        ulong m = Reciprocal(d, n);
        bool reciprocal = m != 0;
        fixed (float* vp = values)
        fixed (ulong* k = keep)
        {
            int* kp = (int*)vp;
            if (Avx2.IsSupported && reciprocal)
            {
                var keys = rng.Keys8(start);
                int same = UniformStream.SameHighWord(start, n); // past it the draws change their high word: scalar
                var vt0 = Vector256.Create(t0);
                var vd = Vector256.Create(d);
                var mLo = Vector256.Create(m & 0xFFFF_FFFFUL).AsUInt32();
                var mHi = Vector256.Create(m >> 32).AsUInt32();
                var magnitude = Vector256.Create(0x7FFF_FFFF);
                var lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
                ulong bits = 0;
                for (; j <= same - 8; j += 8)
                {
                    var u = UniformStream.At8((uint)start + (uint)j, keys);
                    var kept = Vector256.LessThan(u, vt0).AsInt32();
                    var x = u - vt0;
                    var candidate = Vector256.LessThan(x, vd).AsInt32(); // t0 <= u < t0 + d (below t0, x wraps above d)
                    if (candidate != Vector256<int>.Zero)
                    {
                        var i = Vector256.Create(j) + lanes;
                        var j0 = MultiplyHigh(x, mLo, mHi).AsInt32();
                        var other = (j0 - Vector256.GreaterThan(j0, i - Vector256<int>.One)) & candidate; // J0 + (J0 >= i); 0 off candidates
                        var keyJ = Avx2.GatherVector256(kp, other, 4) & magnitude;
                        var keyI = Vector256.Load(kp + j) & magnitude;
                        // (key_i, i) > (key_J, J): key_i > key_J, or key_i >= key_J when J < i (keys are below 2^31,
                        // so key_J − 1 = −1 for key_J = 0 still compares right).
                        kept |= Vector256.GreaterThan(keyI, keyJ + Vector256.LessThan(other, i)) & candidate;
                    }
                    bits |= (ulong)Vector256.ExtractMostSignificantBits(kept) << (j & 63);
                    if ((j & 63) == 56)
                    {
                        k[j >> 6] = bits;
                        bits = 0;
                    }
                }
                if ((j & 63) != 0) k[j >> 6] = bits;
            }
            for (; j < n; j++)
            {
                uint u = rng.At(start + j), x = u - t0;
                bool kept = u < t0;
                if (x < d)
                {
                    int other = reciprocal ? (int)Math.BigMul(x, m, out _) : (int)((ulong)x * (ulong)(n - 1) / d);
                    other += other >= j ? 1 : 0;
                    int keyI = kp[j] & 0x7FFF_FFFF, keyJ = kp[other] & 0x7FFF_FFFF;
                    kept = keyI > keyJ || (keyI == keyJ && j > other);
                }
                k[j >> 6] |= (kept ? 1UL : 0UL) << (j & 63);
            }
        }
        int c = 0;
        for (int w = 0; w < words; w++) c += BitOperations.PopCount(keep[w]);
        return c;
    }

    /// <summary>
    /// m = ⌈2^64 (n − 1) / d⌉, so that for every x &lt; d the high word of x · m is J0 = ⌊x (n − 1) / d⌋: x · m / 2^64
    /// exceeds x (n − 1) / d by less than x / 2^64 &lt; 1 / d, and the fractional part of x (n − 1) / d is a multiple of
    /// 1 / d, at most 1 − 1 / d, so the floor is the same. 0 when m does not fit 64 bits (d ≤ n − 1) or there are no
    /// candidates (n ≤ 1).
    /// </summary>
    internal static ulong Reciprocal(uint d, int n) =>
        n > 1 && d > (uint)(n - 1) ? (ulong)((((UInt128)(ulong)(n - 1) << 64) + d - 1) / d) : 0;

    /// <summary>
    /// Effectively <c>(uint)((x · m) &gt;&gt; 64)</c> per lane for <c>m = mHi · 2^32 + mLo</c> (both broadcast into the low
    /// half of every 64-bit lane): <c>(x · mHi + ⌊x · mLo / 2^32⌋) / 2^32</c>, exact and below 2^64, even and odd lanes
    /// by two 32 × 32 → 64-bit multiplies each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> MultiplyHigh(Vector256<uint> x, Vector256<uint> mLo, Vector256<uint> mHi)
    {
        var even = (Avx2.Multiply(x, mHi) + (Avx2.Multiply(x, mLo) >> 32)) >> 32;
        var xOdd = (x.AsUInt64() >> 32).AsUInt32();
        var odd = (Avx2.Multiply(xOdd, mHi) + (Avx2.Multiply(xOdd, mLo) >> 32)) >> 32;
        return (even | (odd << 32)).AsUInt32();
    }

    /// <summary>
    /// The definition of the sampler, with every rank computed by a stable sort of |values|: keep below T(0), drop from
    /// T(n − 1) on, in between keep iff the element outranks <see cref="Other"/>.
    /// </summary>
    public static int Reference(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<bool> keep)
    {
        int n = values.Length;
        var ranks = new int[n];
        var abs = values.ToArray().Select(MathF.Abs).ToArray();
        Ranking.AscendingRanksReference(abs, ranks);
        uint t0 = n == 0 ? 0 : Threshold(p, 0), t1 = n == 0 ? 0 : Threshold(p, n - 1);
        int kept = 0;
        for (int j = 0; j < n; j++)
        {
            uint u = Draw(rng, start + j);
            keep[j] = u < t0 || (u < t1 && ranks[j] > ranks[Other(j, u - t0, t1 - t0, n)]);
            kept += keep[j] ? 1 : 0;
        }
        return kept;
    }
}
