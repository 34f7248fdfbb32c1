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
/// draw, two compares, and for the candidates a multiply-high, two gathered keys and a compare; no ranks, no sort.
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
    /// interval, skipping i itself. With <paramref name="m"/> = <see cref="Reciprocal"/>(d, n) ≠ 0 the floor comes from a
    /// multiply-high (the same value); with 0 from the division.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Other(int i, uint x, uint d, int n, ulong m)
    {
        int j0 = m != 0 ? (int)Math.BigMul(x, m, out _) : (int)((ulong)x * (ulong)(n - 1) / d);
        return j0 + (j0 >= i ? 1 : 0);
    }

    /// <summary>
    /// Sets bit j of <paramref name="keep"/> (words of 64, bit j of the row in word j / 64; the row's words are
    /// overwritten) by the sampler of the class notes for the row <paramref name="values"/> (keys
    /// <c>bits(values[j]) &amp; 0x7FFF_FFFF</c>, so the order of |values|, −0 = +0) with the draws of elements
    /// <paramref name="start"/> + j. Returns the number kept, in <paramref name="keptSum"/> Σ|values[j]| over the
    /// kept j and in <paramref name="totalSum"/> Σ|values[j]| over the whole row (both as F32 vector partial sums added
    /// to an FP64 total every 128 vectors, the same association for both; the order depends only on the row).
    /// </summary>
    /// <remarks>
    /// Three passes, none with a branch per element: (1) the draws, eight at a time in registers: keep bits below T(0),
    /// and the candidates' indices and offsets x = u − T(0) packed into a list (a permutation per 8-bit candidate mask)
    /// with the candidate bits per word; (2) the list eight candidates at a time: J0 by a multiply-high, both keys
    /// gathered, the wins packed as bits in list order; (3) per word, the word's wins deposited at its candidate bits
    /// (BMI2 <c>pdep</c>). Pass 1 makes its draws two vectors ahead of use (<see cref="UniformStream.At8Lanes"/>) and
    /// compares them once biased to signed: 0.9 → 0.6 ns/element for the pass, 1.2 → 0.9 for Decide (rows of 1024-4096,
    /// one thread, Zen 3), the draws alone being 0.5. A single pass that gathered for every vector holding a candidate (most of them at ε 0.1) and a
    /// pass 2 that set the winners' bits one by one (a branch per winner, or a read-modify-write chain on the same
    /// word) each measured about twice as slow.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe int Decide(ReadOnlySpan<float> values, long start, UniformStream rng, Probability p, Span<ulong> keep, out double keptSum, out double totalSum)
    {
        int n = values.Length, words = (n + 63) / 64, j = 0;
        if (keep.Length < words) throw new ArgumentException("keep needs (n + 63) / 64 words", nameof(keep));
        keep[..words].Clear();
        keptSum = totalSum = 0;
        if (n == 0) return 0;
        uint t0 = Threshold(p, 0), d = Threshold(p, n - 1) - t0;
        // Candidates find J0 by a multiply-high (Reciprocal); when d <= n − 1 (ε below about n / 2^33) they divide.
        ulong m = Reciprocal(d, n);
        double total = 0, all = 0;
        fixed (float* vp = values)
        fixed (ulong* k = keep)
        {
            int* kp = (int*)vp;
            if (Avx2.IsSupported && Bmi2.X64.IsSupported && m != 0)
            {
                int vectorEnd = UniformStream.SameHighWord(start, n) & ~7; // past it the draws change their high word: scalar
                j = vectorEnd;
                var b = Buffers.ForCurrentThread(n);
                fixed (int* ci = b.Index, perm = Pack)
                fixed (uint* cx = b.Offset)
                fixed (ulong* cw = b.Candidates)
                fixed (byte* wins = b.Wins)
                {
                    var keys = rng.Keys8(start);
                    // Unsigned u < T as signed compares of both sides biased by 2^31 (AVX2 has none unsigned): keep below
                    // T(0), a candidate from T(0) up to T(n − 1) = T(0) + d (no wrap: T(n − 1) < 2^32).
                    var below0 = (Vector256.Create(t0) ^ Vector256.Create(0x8000_0000u)).AsInt32();
                    var below1 = (Vector256.Create(t0 + d) ^ Vector256.Create(0x8000_0000u)).AsInt32();
                    // The draws two vectors ahead of their use (see UniformStream.At8Lanes): low counts for element e + 16.
                    var low = UniformStream.Counters8(start);
                    var u0 = UniformStream.At8Lanes(low, keys);
                    var u1 = UniformStream.At8Lanes(low + Vector256.Create(8u), keys);
                    low += Vector256.Create(16u);
                    var first = Vector256<int>.Zero; // e in every lane
                    var acc = Vector256<float>.Zero;
                    var accAll = Vector256<float>.Zero;
                    int block = 0, c = 0;
                    ulong bits = 0, candidates = 0;
                    for (int e = 0; e < vectorEnd; e += 8)
                    {
                        var u = u0;
                        u0 = u1;
                        u1 = UniformStream.At8Lanes(low, keys);
                        low += Vector256.Create(8u);
                        var biased = (u ^ Vector256.Create(0x8000_0000u)).AsInt32();
                        var kept = Vector256.GreaterThan(below0, biased);
                        uint keptBits = Vector256.ExtractMostSignificantBits(kept);
                        uint cm = Vector256.ExtractMostSignificantBits(Vector256.GreaterThan(below1, biased)) & ~keptBits;
                        var order = Vector256.Load(perm + cm * 8);
                        Avx2.PermuteVar8x32(biased - below0, order).Store((int*)cx + c); // x = u − T(0)
                        (first + order).Store(ci + c); // the candidates' indices: e + their lanes
                        c += BitOperations.PopCount(cm);
                        var abs = Vector256.Load(kp + e) & Vector256.Create(0x7FFF_FFFF);
                        acc += (abs & kept).AsSingle(); // the kept |values|, 0 elsewhere
                        accAll += abs.AsSingle();
                        if (++block == 128)
                        {
                            total += Vector256.Sum(acc);
                            all += Vector256.Sum(accAll);
                            acc = accAll = Vector256<float>.Zero;
                            block = 0;
                        }
                        bits |= (ulong)keptBits << (e & 63);
                        candidates |= (ulong)cm << (e & 63);
                        if ((e & 63) == 56)
                        {
                            k[e >> 6] = bits;
                            cw[e >> 6] = candidates;
                            bits = candidates = 0;
                        }
                        first += Vector256.Create(8);
                    }
                    if ((vectorEnd & 63) != 0)
                    {
                        k[vectorEnd >> 6] = bits;
                        cw[vectorEnd >> 6] = candidates;
                    }
                    // Pass 2. The list's padding (index 0, offset 0: J = 1, a valid element as n > 1) is masked off.
                    Vector256<int>.Zero.Store(ci + c);
                    Vector256<uint>.Zero.Store(cx + c);
                    var magnitude = Vector256.Create(0x7FFF_FFFF);
                    var lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
                    var mLo = Vector256.Create(m & 0xFFFF_FFFFUL).AsUInt32();
                    var mHi = Vector256.Create(m >> 32).AsUInt32();
                    for (int q = 0; q < c; q += 8)
                    {
                        var i = Vector256.Load(ci + q);
                        var j0 = MultiplyHigh(Vector256.Load(cx + q), mLo, mHi).AsInt32();
                        var other = j0 - Vector256.GreaterThan(j0, i - Vector256<int>.One); // J0 + (J0 >= i)
                        var keyJ = Avx2.GatherVector256(kp, other, 4) & magnitude;
                        var keyI = Avx2.GatherVector256(kp, i, 4) & magnitude;
                        // (key_i, i) > (key_J, J): key_i > key_J, or key_i >= key_J when J < i (keys are below 2^31,
                        // so key_J − 1 = −1 for key_J = 0 still compares right).
                        var win = Vector256.GreaterThan(keyI, keyJ + Vector256.LessThan(other, i)) & Vector256.LessThan(lanes, Vector256.Create(c - q));
                        wins[q >> 3] = (byte)Vector256.ExtractMostSignificantBits(win);
                        acc += (win & keyI).AsSingle(); // the winners' |values|, 0 elsewhere
                        if (++block == 128)
                        {
                            total += Vector256.Sum(acc);
                            acc = Vector256<float>.Zero;
                            block = 0;
                        }
                    }
                    total += Vector256.Sum(acc);
                    all += Vector256.Sum(accAll);
                    // Pass 3: the next popcount(candidates) wins of the list go to the word's candidate bits, in order.
                    // (The win bytes are padded, so the two 64-bit reads stay inside the buffer.)
                    long pos = 0;
                    for (int w = 0; w < (vectorEnd + 63) / 64; w++)
                    {
                        ulong lo = *(ulong*)(wins + (pos >> 3)), hi = *(ulong*)(wins + (pos >> 3) + 8);
                        int shift = (int)(pos & 7);
                        ulong next = lo >> shift | hi << 1 << (63 - shift);
                        k[w] |= Bmi2.X64.ParallelBitDeposit(next, cw[w]);
                        pos += BitOperations.PopCount(cw[w]);
                    }
                }
            }
            for (; j < n; j++)
            {
                uint u = rng.At(start + j), x = u - t0;
                int keyI = kp[j] & 0x7FFF_FFFF;
                bool kept = u < t0;
                all += BitConverter.Int32BitsToSingle(keyI);
                if (x < d)
                {
                    int other = Other(j, x, d, n, m), keyJ = kp[other] & 0x7FFF_FFFF;
                    kept = keyI > keyJ || (keyI == keyJ && j > other);
                }
                if (kept)
                {
                    k[j >> 6] |= 1UL << (j & 63);
                    total += BitConverter.Int32BitsToSingle(keyI);
                }
            }
        }
        keptSum = total;
        totalSum = all;
        int count = 0;
        for (int w = 0; w < words; w++) count += BitOperations.PopCount(keep[w]);
        return count;
    }

    /// <summary>Row of the permutation that packs the lanes set in an 8-bit mask first, in order, per mask.</summary>
    private static readonly int[] Pack = BuildPack();

    private static int[] BuildPack()
    {
        var table = new int[256 * 8];
        for (int mask = 0; mask < 256; mask++)
        {
            int c = 0;
            for (int lane = 0; lane < 8; lane++)
                if ((mask >> lane & 1) != 0) table[mask * 8 + c++] = lane;
        }
        return table;
    }

    /// <summary>Per-thread candidate list of <see cref="Decide"/> (indices, offsets, candidate bits per word, wins).</summary>
    private sealed class Buffers
    {
        [ThreadStatic]
        private static Buffers? _current;

        public int[] Index = [];
        public uint[] Offset = [];
        public ulong[] Candidates = [];
        public byte[] Wins = [];

        public static Buffers ForCurrentThread(int n)
        {
            var b = _current ??= new Buffers();
            if (b.Index.Length < n + 8)
            {
                b.Index = new int[n + 8];
                b.Offset = new uint[n + 8];
                b.Candidates = new ulong[(n + 63) / 64];
                b.Wins = new byte[(n + 7) / 8 + 17];
            }
            return b;
        }
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
            keep[j] = u < t0 || (u < t1 && ranks[j] > ranks[Other(j, u - t0, t1 - t0, n, 0)]);
            kept += keep[j] ? 1 : 0;
        }
        return kept;
    }
}
