using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>What the TIES-style election sums: weighted deltas (mergekit), unweighted masked deltas (paper), or signs (count).</summary>
public enum ElectionBasis
{
    Weighted,
    Unweighted,
    Count,
}

/// <summary>
/// The per-chunk kernels of task-vector merging: a chunk is read once and merged with every model's term in registers
/// when its models are masked alike (<c>MergeChunkInRegisters</c>, the common case), else in L1-sized blocks by one tight
/// loop per model and mask kind (<c>MergeChunkSpecialised</c>), inputs given as F32 or decoded from stored BF16 bits in
/// registers. <see cref="MergeChunkReference"/> and <see cref="CombineElement"/> are the plain scalar definitions, and
/// the earlier element-outer loop (<c>MergeChunkFused</c>) the bitwise reference for the diagnostics' summation order.
/// </summary>
public static class TaskVectorKernels
{
    /// <summary>Lane numbers 0, 1, 2, ... as a vector.</summary>
    private static readonly Vector<int> Lanes = BuildLanes();

    /// <summary>A boundary index relative to a vector's first element, clamped to [-1, lanes] so it fits an int lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RelativeIndex(long index, long first) =>
        index < first ? -1 : index - first > Vector<int>.Count ? Vector<int>.Count : (int)(index - first); // no overflow at long.MinValue/MaxValue

    private static Vector<int> BuildLanes()
    {
        Span<int> l = stackalloc int[Vector<int>.Count];
        for (int i = 0; i < l.Length; i++) l[i] = i;
        return new Vector<int>(l);
    }

    /// <summary>256 lane masks for 8 bits (bit j set → lane j all ones), for expanding DARE/DELLA bit masks 8 lanes at a time.</summary>
    private static readonly Vector<int>[] ByteMasks = BuildByteMasks();

    /// <summary>
    /// One chunk of a task-vector merge, all models at once (in L1-sized blocks, see <c>MergeChunkSpecialised</c>;
    /// the tail element by element). Per element: <c>d_i = x_i − b</c>, <c>ss_i += d_i²</c>,
    /// <c>m_i = keep_i(d_i) ? d_i · scale_i : 0</c>, <c>D_i = w_i · m_i</c>; with consensus the TIES disjoint merge of
    /// <see cref="CombineElement"/> (election on Σ D_i, Σ m_i or Σ sign(D_i)), otherwise <c>mixed = Σ D_i</c> and the scalar
    /// divisor; then <c>b = b + λ · (normalize ? mixed / divisor : mixed)</c>. Returns the number of elements where the
    /// masked deltas m_i take both signs. With <paramref name="diagnostics"/> false the sums of squares and the conflict
    /// count are skipped (returns 0). <see cref="MergeChunkReference"/> is the scalar definition.
    /// </summary>
    public static long MergeChunk(float[][] x, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor,
        float lambda, Span<double> ss, bool diagnostics = true) =>
        MergeChunkWithBFloat16Inputs(x, default, m, b, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss, diagnostics);

    /// <summary>
    /// <see cref="MergeChunk"/> with the inputs optionally given as BF16 bits in native memory (<paramref name="bf16"/>[i]: a <c>ushort*</c> to the
    /// chunk's first element, e.g. a memory-mapped tensor), decoded in the kernel (exact: a 16-bit shift) instead of
    /// read into <paramref name="x"/> first; then <paramref name="x"/> is not read, and b's length must be a multiple of 8.
    /// </summary>
    internal static long MergeChunkWithBFloat16Inputs(float[][] x, ReadOnlySpan<nint> bf16, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor,
        float lambda, Span<double> ss, bool diagnostics = true)
    {
        int j = 0;
        long conflicts = 0;
        bool raw = !bf16.IsEmpty;
        if (raw && (!CanDecodeBFloat16 || b.Length % 8 != 0 || m > MaxVectorModels))
            throw new ArgumentException("BF16 inputs need AVX2, at most MaxVectorModels models and whole vectors", nameof(bf16));
        if (VectorPath && m > 0 && m <= MaxVectorModels)
        {
            j = diagnostics
                ? MergeChunkInRegisters<Enabled>(x, bf16, m, b, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss, out conflicts)
                  ?? MergeChunkSpecialised<Enabled>(x, bf16, m, b, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss, out conflicts)
                : MergeChunkInRegisters<Disabled>(x, bf16, m, b, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss, out conflicts)
                  ?? MergeChunkSpecialised<Disabled>(x, bf16, m, b, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss, out conflicts);
        }
        for (; j < b.Length; j++) conflicts += MergeElement(x, m, b, j, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss) ? 1 : 0;
        return conflicts;
    }

    /// <summary>
    /// <see cref="MergeChunk"/> with diagnostics as one element-outer loop over all models (the earlier implementation,
    /// kept as the reference the per-model loops are checked against bit for bit, sums of squares included).
    /// </summary>
    internal static long MergeChunkFused(float[][] x, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor,
        float lambda, Span<double> ss)
    {
        int n = b.Length, j = 0, w = Vector<float>.Count;
        long conflicts = 0;
        if (Vector.IsHardwareAccelerated && w == 8 && m <= MaxVectorModels)
        {
            // Everything the inner loop needs per model, hoisted out of it (no interface calls or lookups per element).
            Span<int> kind = stackalloc int[m];          // 0 keep all, 1 key range, 2 bits
            Span<Vector<float>> vScale = stackalloc Vector<float>[m];
            Span<Vector<float>> vWeight = stackalloc Vector<float>[m];
            Span<Vector<float>> vWeightScale = stackalloc Vector<float>[m];
            Span<Vector<float>> vLo = stackalloc Vector<float>[m];
            Span<Vector<float>> vHi = stackalloc Vector<float>[m];
            Span<long> loIndex = stackalloc long[m];
            Span<long> hiIndex = stackalloc long[m];
            var bitWords = new ulong[]?[m];
            var elementScale = new FloatBuffer?[m];
            bool anyElementScale = false;
            for (int i = 0; i < m; i++)
            {
                var mk = masks[i];
                kind[i] = mk is null || mk.IsAll ? 0 : mk.Bits is null ? 1 : 2;
                vScale[i] = new Vector<float>(mk?.Scale ?? 1f);
                vWeight[i] = new Vector<float>(weights[i]);
                vWeightScale[i] = new Vector<float>(weights[i] * (mk?.Scale ?? 1f));
                vLo[i] = new Vector<float>(mk?.Low.Value ?? float.NegativeInfinity);
                vHi[i] = new Vector<float>(mk?.High.Value ?? float.PositiveInfinity);
                loIndex[i] = mk?.Low.Index ?? long.MinValue;
                hiIndex[i] = mk?.High.Index ?? long.MaxValue;
                bitWords[i] = mk?.Bits?.RawWords;
                elementScale[i] = mk?.ElementScale;
                anyElementScale |= elementScale[i] is not null;
            }
            Span<Vector<float>> dv = stackalloc Vector<float>[m];
            Span<Vector<float>> ssv = stackalloc Vector<float>[m];
            ssv.Clear();
            var zero = Vector<float>.Zero;
            var vLambda = new Vector<float>(lambda);
            var vScalarScale = new Vector<float>(lambda / (normalize ? scalarDivisor : 1f));
            var cnt = Vector<int>.Zero;
            int block = 0;
            for (; j <= n - w; j += w)
            {
                var bv = new Vector<float>(b.Slice(j, w));
                var election = zero;
                var mix = zero;
                var mx = zero;
                var mn = zero;
                long e = start + j;
                for (int i = 0; i < m; i++)
                {
                    var d = new Vector<float>(x[i], j) - bv;
                    ssv[i] += d * d;
                    Vector<float> mi = kind[i] switch
                    {
                        0 => d,
                        1 => Vector.ConditionalSelect(RangeKeep(d, e, vLo[i], vHi[i], loIndex[i], hiIndex[i]), d, zero),
                        _ => Vector.ConditionalSelect(ByteMasks[(int)((bitWords[i]![e >> 6] >> (int)(e & 63)) & 0xFF)], d, zero),
                    };
                    // mi is the kept, unscaled delta: scales are positive, so signs (conflicts, elections) are unchanged.
                    Vector<float> di;
                    if (anyElementScale && elementScale[i] is { } es)
                    {
                        var perElement = new Vector<float>(es.Slice(e, w));
                        di = mi * perElement * vWeight[i];
                        if (basis == ElectionBasis.Unweighted) election += mi * perElement;
                    }
                    else
                    {
                        di = mi * vWeightScale[i];
                        if (basis == ElectionBasis.Unweighted) election += mi * vScale[i];
                    }
                    dv[i] = di;
                    if (basis == ElectionBasis.Weighted) election += di;
                    else if (basis == ElectionBasis.Count) election += Sign(di);
                    mx = i == 0 ? mi : Vector.Max(mx, mi);
                    mn = i == 0 ? mi : Vector.Min(mn, mi);
                }
                cnt -= Vector.GreaterThan(mx, zero) & Vector.LessThan(mn, zero);
                Vector<float> result;
                if (consensus)
                {
                    var pos = Vector.GreaterThan(election, zero) | (tieSign > 0 ? Vector.Equals(election, zero) : Vector<int>.Zero);
                    var neg = Vector.LessThan(election, zero) | (tieSign < 0 ? Vector.Equals(election, zero) : Vector<int>.Zero);
                    var div = zero;
                    for (int i = 0; i < m; i++)
                    {
                        var di = dv[i];
                        var basisValue = flip[i] > 0 ? di : -di;
                        var agree = (pos & Vector.GreaterThan(basisValue, zero)) | (neg & Vector.LessThan(basisValue, zero));
                        mix += Vector.ConditionalSelect(agree, di, zero);
                        div += Vector.ConditionalSelect(agree, countDivisor ? Vector<float>.One : vWeight[i], zero);
                    }
                    div = Vector.ConditionalSelect(Vector.Equals(div, zero), Vector<float>.One, div);
                    result = bv + vLambda * (normalize ? mix / div : mix);
                }
                else
                {
                    for (int i = 0; i < m; i++) mix += dv[i];
                    result = bv + vScalarScale * mix;
                }
                result.CopyTo(b.Slice(j, w));
                if (++block == 64)
                {
                    for (int i = 0; i < m; i++) ss[i] += Vector.Sum(ssv[i]);
                    ssv.Clear();
                    block = 0;
                }
            }
            for (int i = 0; i < m; i++) ss[i] += Vector.Sum(ssv[i]);
            conflicts = Vector.Sum(cnt);
        }
        for (; j < n; j++) conflicts += MergeElement(x, m, b, j, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss) ? 1 : 0;
        return conflicts;
    }

    /// <summary>Per-thread work buffers of <see cref="MergeChunkSpecialised"/>: the weighted masked deltas of each model and the election sums.</summary>
    [ThreadStatic]
    private static float[][]? _work;

    private static float[] Work(int index, int length)
    {
        if (_work is null || _work.Length <= index) System.Array.Resize(ref _work, Math.Max(index + 1, MaxVectorModels + 1));
        var a = _work[index];
        if (a is null || a.Length < length) _work[index] = a = GC.AllocateUninitializedArray<float>(Math.Max(length, Block));
        return a;
    }

    /// <summary>
    /// The vector part of <see cref="MergeChunk"/> in blocks of <see cref="Block"/> elements: one tight loop per model and
    /// mask kind (generic over <see cref="IKeep"/>, so each kind gets its own compiled loop with nothing re-checked per
    /// element) writes the weighted masked deltas D_i and adds the election terms into L1-resident block buffers, then one
    /// combine loop. With <typeparamref name="TDiag"/> on, the same loops also sum d² per model (F32 per 64 vectors, then
    /// FP64, the grouping of <see cref="MergeChunkFused"/>) and keep the running max/min of the masked deltas for the
    /// conflict count. The loops index by refs (no span slicing or bounds checks per vector), the keeps are branch-free
    /// (BF16 deltas tie at the top-k bound often, which made a tie branch mispredict), and the arithmetic is the same
    /// operations in the same order as the fused loop, so results and sums are bit-identical. Returns the number of
    /// elements done (whole vectors); the caller finishes the tail.
    /// </summary>
    private static unsafe int MergeChunkSpecialised<TDiag>(float[][] x, ReadOnlySpan<nint> bf16, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor, float lambda,
        Span<double> ss, out long conflicts)
        where TDiag : struct, IFlag
    {
        const int w = 8;
        conflicts = 0;
        int n = b.Length, vectorEnd = n - n % w;
        if (vectorEnd == 0) return 0;
        // Per model: how it is masked, and its constants (hoisted out of every loop).
        Span<KeepKind> kind = stackalloc KeepKind[m];
        var terms = new ModelTerms[m];
        for (int i = 0; i < m; i++)
        {
            var mk = masks[i];
            kind[i] = KindOf(mk);
            terms[i] = new ModelTerms(weights[i], mk?.Scale ?? 1f, mk?.ElementScale, consensus ? basis : null);
        }
        Span<Vector256<float>> vDiv = stackalloc Vector256<float>[m];
        Span<bool> flipped = stackalloc bool[m];
        for (int i = 0; i < m; i++)
        {
            vDiv[i] = countDivisor ? Vector256<float>.One : Vector256.Create(weights[i]);
            flipped[i] = !(flip[i] > 0);
        }
        var dv = new float[m][];
        for (int i = 0; i < m; i++) dv[i] = Work(i, Block);
        var election = Work(m, Block);
        var max = default(TDiag).On ? Work(m + 1, Block) : election;
        var min = default(TDiag).On ? Work(m + 2, Block) : election;
        Span<Vector256<float>> ssv = stackalloc Vector256<float>[m];
        ssv.Clear();
        var cnt = Vector256<int>.Zero;
        var zero = Vector256<float>.Zero;
        var one = Vector256<float>.One;
        var vScalarScale = Vector256.Create(lambda / (normalize ? scalarDivisor : 1f));
        var vLambda = Vector256.Create(lambda);
        var tiePos = tieSign > 0 ? Vector256<float>.AllBitsSet : zero;
        var tieNeg = tieSign < 0 ? Vector256<float>.AllBitsSet : zero;
        ref float el = ref MemoryMarshal.GetArrayDataReference(election);
        ref float mxr = ref MemoryMarshal.GetArrayDataReference(max);
        ref float mnr = ref MemoryMarshal.GetArrayDataReference(min);
        // Blocks small enough that the per-model outputs stay in L1 while the combine loop reads them back.
        for (int b0 = 0; b0 < vectorEnd; b0 += Block)
        {
            int len = Math.Min(Block, vectorEnd - b0);
            ref float bs = ref Unsafe.Add(ref MemoryMarshal.GetReference(b), b0);
            long first = start + b0;
            for (int i = 0; i < m; i++)
            {
                ref float xs = ref bf16.IsEmpty ? ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x[i]), b0) : ref Unsafe.NullRef<float>();
                ushort* xb = bf16.IsEmpty ? null : (ushort*)bf16[i] + b0;
                ref float d = ref MemoryMarshal.GetArrayDataReference(dv[i]);
                var mk = masks[i];
                var diag = new DiagTerms(ref mxr, ref mnr, i == 0, ref ss[i]);
                switch (kind[i])
                {
                    case KeepKind.All: MaskModel<KeepAll, TDiag>(default, ref xs, xb, ref bs, ref d, ref el, len, first, i == 0, terms[i], ref ssv[i], diag); break;
                    case KeepKind.Range: MaskModel<KeepRange, TDiag>(new KeepRange(mk!.Low, mk.High, first, len), ref xs, xb, ref bs, ref d, ref el, len, first, i == 0, terms[i], ref ssv[i], diag); break;
                    case KeepKind.Bits: MaskModel<KeepBits, TDiag>(new KeepBits(mk!.Bits!.RawWords), ref xs, xb, ref bs, ref d, ref el, len, first, i == 0, terms[i], ref ssv[i], diag); break;
                    default: MaskModel<KeepAbove, TDiag>(new KeepAbove(mk!.Low, first, len), ref xs, xb, ref bs, ref d, ref el, len, first, i == 0, terms[i], ref ssv[i], diag); break;
                }
            }
            if (default(TDiag).On)
                for (int j = 0; j < len; j += w)
                    cnt -= (Vector256.GreaterThan(Vector256.LoadUnsafe(ref mxr, (nuint)j), zero) & Vector256.LessThan(Vector256.LoadUnsafe(ref mnr, (nuint)j), zero)).AsInt32();
            if (!consensus)
            {
                for (int j = 0; j < len; j += w)
                {
                    var mix = zero;
                    for (int i = 0; i < m; i++) mix += Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(dv[i]), (nuint)j);
                    (Vector256.LoadUnsafe(ref bs, (nuint)j) + vScalarScale * mix).StoreUnsafe(ref bs, (nuint)j);
                }
                continue;
            }
            for (int j = 0; j < len; j += w)
            {
                var e = Vector256.LoadUnsafe(ref el, (nuint)j);
                var atZero = Vector256.Equals(e, zero);
                var pos = Vector256.GreaterThan(e, zero) | (tiePos & atZero);
                var neg = Vector256.LessThan(e, zero) | (tieNeg & atZero);
                var mix = zero;
                var div = zero;
                for (int i = 0; i < m; i++)
                {
                    var di = Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(dv[i]), (nuint)j);
                    // sign(flip_i · D_i) agrees with the elected sign: with flip -1, "positive" means D_i < 0.
                    var gt = Vector256.GreaterThan(di, zero);
                    var lt = Vector256.LessThan(di, zero);
                    var agree = flipped[i] ? (pos & lt) | (neg & gt) : (pos & gt) | (neg & lt);
                    mix += agree & di;
                    div += agree & vDiv[i];
                }
                div = Vector256.ConditionalSelect(Vector256.Equals(div, zero), one, div);
                (Vector256.LoadUnsafe(ref bs, (nuint)j) + vLambda * (normalize ? mix / div : mix)).StoreUnsafe(ref bs, (nuint)j);
            }
        }
        if (default(TDiag).On)
        {
            for (int i = 0; i < m; i++) ss[i] += Vector.Sum(ssv[i].AsVector());
            conflicts = Vector.Sum(cnt.AsVector());
        }
        return vectorEnd;
    }

    /// <summary>
    /// The vector part of <see cref="MergeChunk"/> with every model's term kept in registers: per vector of 8 elements each
    /// model's <c>D_i = keep_i(x_i − b) · (w_i · scale_i)</c> and the weighted election sum, then the combine, with no block
    /// buffers in between (the per-model loops of <see cref="MergeChunkSpecialised"/> store D_i and the election sums and read
    /// them back); with <typeparamref name="TDiag"/> the same diagnostics in the same grouping. The same operations in the same
    /// order per element, so values, sums of squares and conflicts are bit-identical to it (tested against <see cref="MergeChunkFused"/>,
    /// which the block kernel is checked against too). Null when the
    /// chunk is not of the common shape this covers: every model masked the same way (all kept, one key range kind, or bits),
    /// scalar scales, and a weighted election (no sign flips); the caller then runs the block kernel.
    /// </summary>
    private static int? MergeChunkInRegisters<TDiag>(float[][] x, ReadOnlySpan<nint> bf16, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks,
        ReadOnlySpan<float> weights, ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize,
        float scalarDivisor, float lambda, Span<double> ss, out long conflicts)
        where TDiag : struct, IFlag
    {
        conflicts = 0;
        if (consensus && basis != ElectionBasis.Weighted) return null;
        int n = b.Length, vectorEnd = n - n % 8;
        KeepKind? kind = null;
        for (int i = 0; i < m; i++)
        {
            var mk = masks[i];
            if (mk?.ElementScale is not null || !(flip[i] > 0)) return null;
            var k = KindOf(mk);
            if (kind is not null && k != kind) return null;
            kind = k;
        }
        Span<Vector256<float>> weightScale = stackalloc Vector256<float>[m];
        Span<Vector256<float>> divisorTerm = stackalloc Vector256<float>[m];
        for (int i = 0; i < m; i++)
        {
            weightScale[i] = Vector256.Create(weights[i] * (masks[i]?.Scale ?? 1f));
            divisorTerm[i] = countDivisor ? Vector256<float>.One : Vector256.Create(weights[i]);
        }
        var c = new RegisterCombine(consensus, tieSign, normalize, lambda, scalarDivisor);
        switch (kind)
        {
            case KeepKind.All:
                return InRegisters<KeepAll, TDiag>(new KeepAll[m], x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
            case KeepKind.Bits:
                var bits = new KeepBits[m];
                for (int i = 0; i < m; i++) bits[i] = new KeepBits(masks[i]!.Bits!.RawWords);
                return InRegisters<KeepBits, TDiag>(bits, x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
            case KeepKind.Above:
                // Only the chunks holding a tie index need the index test; elsewhere one compare per model decides.
                var atLeast = new KeepAtLeast[m];
                for (int i = 0; i < m; i++)
                {
                    if (!Bound(masks[i]!.Low, lower: true, start, vectorEnd, out float lo)) { atLeast = null; break; }
                    atLeast[i] = new KeepAtLeast(lo);
                }
                if (atLeast is not null) return InRegisters<KeepAtLeast, TDiag>(atLeast, x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
                var above = new KeepAbove[m];
                for (int i = 0; i < m; i++) above[i] = new KeepAbove(masks[i]!.Low, start, vectorEnd);
                return InRegisters<KeepAbove, TDiag>(above, x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
            default:
                var between = new KeepBetween[m];
                for (int i = 0; i < m; i++)
                {
                    if (!Bound(masks[i]!.Low, lower: true, start, vectorEnd, out float lo) || !Bound(masks[i]!.High, lower: false, start, vectorEnd, out float hi))
                    {
                        between = null;
                        break;
                    }
                    between[i] = new KeepBetween(lo, hi);
                }
                if (between is not null) return InRegisters<KeepBetween, TDiag>(between, x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
                var range = new KeepRange[m];
                for (int i = 0; i < m; i++) range[i] = new KeepRange(masks[i]!.Low, masks[i]!.High, start, vectorEnd);
                return InRegisters<KeepRange, TDiag>(range, x, bf16, m, b, start, weightScale, divisorTerm, c, vectorEnd, ss, out conflicts);
        }
    }

    /// <summary>
    /// The plain float bound that decides <paramref name="key"/> (a mask's low key with <paramref name="lower"/>, else its high key) for
    /// every element of [start, start + length) when its tie index lies outside that range, so elements equal to the key's
    /// value are all kept or all dropped there: low keeps |d| ≥ bound (the value, or the next float up when its ties are
    /// dropped), high keeps |d| ≤ bound (the value, or the next float down). False when the tie index falls inside, or for a
    /// NaN or infinite value whose ties are dropped (no such float bound there).
    /// </summary>
    internal static bool Bound(MaskKey key, bool lower, long start, int length, out float bound)
    {
        bound = key.Value;
        if (float.IsNaN(bound)) return false;
        // Low keeps ties at index >= key.Index; high keeps ties at index <= key.Index.
        bool allKept = lower ? key.Index <= start : key.Index >= start + length - 1;
        bool allDropped = lower ? key.Index >= start + length : key.Index < start;
        if (allKept) return true;
        if (!allDropped || float.IsInfinity(bound)) return false;
        bound = lower ? MathF.BitIncrement(bound) : MathF.BitDecrement(bound);
        return true;
    }

    /// <summary>The combine step's constants for <see cref="InRegisters"/>.</summary>
    private readonly record struct RegisterCombine(bool Consensus, float TieSign, bool Normalize, float Lambda, float ScalarDivisor);

    /// <summary>
    /// <see cref="MergeChunkInRegisters"/> for one mask kind over elements [0, <paramref name="vectorEnd"/>) (whole vectors; the
    /// keeps' tie indices are relative to the chunk start). Returns <paramref name="vectorEnd"/>.
    /// </summary>
    private static unsafe int InRegisters<TKeep, TDiag>(TKeep[] keeps, float[][] x, ReadOnlySpan<nint> bf16, int m, Span<float> b, long start,
        ReadOnlySpan<Vector256<float>> weightScale, ReadOnlySpan<Vector256<float>> divisorTerm, RegisterCombine c, int vectorEnd, Span<double> ss, out long conflicts)
        where TKeep : struct, IKeep
        where TDiag : struct, IFlag
    {
        const int w = 8;
        bool raw = !bf16.IsEmpty;
        Span<Vector256<float>> dv = stackalloc Vector256<float>[m];
        Span<Vector256<float>> ssv = stackalloc Vector256<float>[m];
        ssv.Clear();
        var cnt = Vector256<int>.Zero;
        var zero = Vector256<float>.Zero;
        var one = Vector256<float>.One;
        var vLambda = Vector256.Create(c.Lambda);
        var vScalarScale = Vector256.Create(c.Lambda / (c.Normalize ? c.ScalarDivisor : 1f));
        var tiePos = c.TieSign > 0 ? Vector256<float>.AllBitsSet : zero;
        var tieNeg = c.TieSign < 0 ? Vector256<float>.AllBitsSet : zero;
        var signBit = Vector256.Create(-0f);
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var step = Vector256.Create(w);
        ref float bs = ref MemoryMarshal.GetReference(b);
        for (int j = 0; j < vectorEnd; j += w, lane += step)
        {
            var b8 = Vector256.LoadUnsafe(ref bs, (nuint)j);
            var election = zero;
            var max = zero;
            var min = zero;
            for (int i = 0; i < m; i++)
            {
                var xv = raw ? DecodeBFloat16((ushort*)bf16[i] + j) : Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(x[i]), (nuint)j);
                var d = xv - b8;
                var mi = keeps[i].Apply(d, lane, start + j);
                if (default(TDiag).On)
                {
                    // The block kernel's diagnostics: d² per model in F32, into FP64 every 64 vectors; the running max/min of the kept deltas.
                    ssv[i] += d * d;
                    max = i == 0 ? mi : Vector256.Max(max, mi);
                    min = i == 0 ? mi : Vector256.Min(min, mi);
                }
                var di = mi * weightScale[i];
                dv[i] = di;
                if (c.Consensus) election += di;
            }
            if (default(TDiag).On)
            {
                cnt -= (Vector256.GreaterThan(max, zero) & Vector256.LessThan(min, zero)).AsInt32();
                if (((j + w) & 511) == 0)
                    for (int i = 0; i < m; i++)
                    {
                        ss[i] += Vector.Sum(ssv[i].AsVector());
                        ssv[i] = zero;
                    }
            }
            if (!c.Consensus)
            {
                var sum = zero;
                for (int i = 0; i < m; i++) sum += dv[i];
                (b8 + vScalarScale * sum).StoreUnsafe(ref bs, (nuint)j);
                continue;
            }
            var atZero = Vector256.Equals(election, zero);
            var pos = Vector256.GreaterThan(election, zero) | (tiePos & atZero);
            var neg = Vector256.LessThan(election, zero) | (tieNeg & atZero);
            // (pos & D > 0) | (neg & D < 0) as one compare: flip D's sign where the elected sign is negative (±0 stay not > 0).
            var elected = pos | neg;
            var flipNegative = neg & signBit;
            var mix = zero;
            var div = zero;
            for (int i = 0; i < m; i++)
            {
                var di = dv[i];
                var agree = Vector256.GreaterThan(di ^ flipNegative, zero) & elected;
                mix += agree & di;
                div += agree & divisorTerm[i];
            }
            div = Vector256.ConditionalSelect(Vector256.Equals(div, zero), one, div);
            (b8 + vLambda * (c.Normalize ? mix / div : mix)).StoreUnsafe(ref bs, (nuint)j);
        }
        conflicts = 0;
        if (default(TDiag).On)
        {
            for (int i = 0; i < m; i++) ss[i] += Vector.Sum(ssv[i].AsVector());
            conflicts = Vector.Sum(cnt.AsVector());
        }
        return vectorEnd;
    }

    /// <summary>How a model's mask keeps elements, for the kernels' per-kind loops.</summary>
    private enum KeepKind : byte
    {
        /// <summary>Every element (no mask).</summary>
        All,
        /// <summary>A key range with both ends (<see cref="KeepRange"/>).</summary>
        Range,
        /// <summary>A bit per element (<see cref="KeepBits"/>).</summary>
        Bits,
        /// <summary>A key range with no upper bound (<see cref="KeepAbove"/>).</summary>
        Above,
    }

    private static KeepKind KindOf(SparseMask? mask) =>
        mask is null || mask.IsAll ? KeepKind.All
        : mask.Bits is not null ? KeepKind.Bits
        : mask.High == MaskKey.Max ? KeepKind.Above
        : KeepKind.Range;

    /// <summary>Elements per block of <see cref="MergeChunkSpecialised"/> (a multiple of 512, so bit-mask words and diagnostic sum groups are whole).</summary>
    private const int Block = 1024;

    /// <summary>One model's constants for <see cref="MaskModel"/>; <see cref="Election"/> null when no election is summed.</summary>
    private readonly record struct ModelTerms(float Weight, float Scale, Methods.FloatBuffer? ElementScale, ElectionBasis? Election);

    /// <summary>Where <see cref="MaskModel"/> puts its diagnostics: the running max/min of the masked deltas over the block (the first model writes them) and the model's FP64 sum of squares.</summary>
    private readonly ref struct DiagTerms(ref float max, ref float min, bool first, ref double ss)
    {
        public readonly ref float Max = ref max;
        public readonly ref float Min = ref min;
        public readonly bool First = first;
        public readonly ref double Ss = ref ss;
    }

    /// <summary>A compile-time switch for generic kernels (the JIT folds <c>default(T).On</c>).</summary>
    private interface IFlag
    {
        bool On { get; }
    }

    private readonly struct Enabled : IFlag
    {
        public bool On => true;
    }

    private readonly struct Disabled : IFlag
    {
        public bool On => false;
    }

    /// <summary>
    /// One model over a block of <paramref name="n"/> elements: <c>m = keep(d) ? d : 0</c> with <c>d = x − b</c>,
    /// <c>D = m · (w · scale)</c> (or <c>m · scale_j · w</c> per element) into <paramref name="dOut"/>, and the election
    /// term added to <paramref name="election"/> (D, the unweighted <c>m · scale</c>, or sign(D); the first model adds it
    /// to 0). With <typeparamref name="TDiag"/>: <c>ssv += d·d</c>, flushed into the FP64 sum every 64 vectors (the
    /// block starts on a 512-element boundary of the chunk), and the running max/min of m.
    /// </summary>
    private static unsafe void MaskModel<TKeep, TDiag>(TKeep keep, ref float x, ushort* xb, ref float b, ref float dOut, ref float election, int n, long start, bool firstModel,
        ModelTerms t, ref Vector256<float> ssv, DiagTerms diag)
        where TKeep : struct, IKeep
        where TDiag : struct, IFlag
    {
        const int w = 8;
        var vWeight = Vector256.Create(t.Weight);
        var vScale = Vector256.Create(t.Scale);
        var vWeightScale = Vector256.Create(t.Weight * t.Scale);
        var zero = Vector256<float>.Zero;
        var one = Vector256<float>.One;
        ref float scales = ref t.ElementScale is { } es ? ref MemoryMarshal.GetReference(es.Slice(start, n)) : ref Unsafe.NullRef<float>();
        bool perElement = t.ElementScale is not null;
        var basis = t.Election ?? ElectionBasis.Weighted;
        bool elect = t.Election is not null;
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var step = Vector256.Create(w);
        for (int j = 0; j < n; j += w, lane += step)
        {
            var xv = xb is null ? Vector256.LoadUnsafe(ref x, (nuint)j) : DecodeBFloat16(xb + j);
            var d = xv - Vector256.LoadUnsafe(ref b, (nuint)j);
            if (default(TDiag).On)
            {
                ssv += d * d;
                if (((j + w) & 511) == 0)
                {
                    diag.Ss += Vector.Sum(ssv.AsVector());
                    ssv = zero;
                }
            }
            var mi = keep.Apply(d, lane, start + j);
            if (default(TDiag).On)
            {
                (diag.First ? mi : Vector256.Max(Vector256.LoadUnsafe(ref diag.Max, (nuint)j), mi)).StoreUnsafe(ref diag.Max, (nuint)j);
                (diag.First ? mi : Vector256.Min(Vector256.LoadUnsafe(ref diag.Min, (nuint)j), mi)).StoreUnsafe(ref diag.Min, (nuint)j);
            }
            Vector256<float> di, unweighted;
            if (perElement)
            {
                var pe = Vector256.LoadUnsafe(ref scales, (nuint)j);
                di = mi * pe * vWeight;
                unweighted = mi * pe;
            }
            else
            {
                di = mi * vWeightScale;
                unweighted = mi * vScale;
            }
            di.StoreUnsafe(ref dOut, (nuint)j);
            if (!elect) continue;
            var term = basis switch
            {
                ElectionBasis.Weighted => di,
                ElectionBasis.Unweighted => unweighted,
                _ => (Vector256.GreaterThan(di, zero) & one) - (Vector256.LessThan(di, zero) & one),
            };
            ((firstModel ? zero : Vector256.LoadUnsafe(ref election, (nuint)j)) + term).StoreUnsafe(ref election, (nuint)j);
        }
    }

    /// <summary>
    /// Whether the register (Vector256) loops run: 256-bit vectors accelerated and <see cref="Vector{T}"/> of the same
    /// width, so their sums reduce in the lane order of the <see cref="Vector{T}"/> loops they are checked against.
    /// </summary>
    internal static bool VectorPath => Vector256.IsHardwareAccelerated && Vector<float>.Count == 8;

    /// <summary>Whether <see cref="DecodeBFloat16"/> runs here (AVX2, inside the register loops).</summary>
    internal static bool CanDecodeBFloat16 => System.Runtime.Intrinsics.X86.Avx2.IsSupported && VectorPath;

    /// <summary>8 BF16 values as F32 (exact; see <see cref="BFloat16Conversion.ToSingle8"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> DecodeBFloat16(ushort* p) => BFloat16Conversion.ToSingle8(ref *p);

    /// <summary>
    /// <c>destination[j] = |x[j] − b[j]|</c> over <c>destination.Length</c> elements of BF16 bits (decoded exactly, in
    /// registers), returning the F32 sum of the magnitudes. The values equal bitwise those of reading into F32 and
    /// <see cref="MethodHelpers.AbsoluteDifference"/>. The sum stands in for a NaN/Inf screen: its terms are never
    /// negative, so it is non-finite when any x or b is NaN or infinite (a finite overflow also makes it so: a false alarm
    /// that only costs a re-read).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float AbsoluteDifferenceBFloat16(ushort* x, ushort* b, Span<float> destination)
    {
        int n = destination.Length, j = 0;
        ref float d = ref MemoryMarshal.GetReference(destination);
        var acc = Vector256<float>.Zero;
        if (CanDecodeBFloat16)
            for (; j <= n - 8; j += 8)
            {
                var v = Vector256.Abs(DecodeBFloat16(x + j) - DecodeBFloat16(b + j));
                v.StoreUnsafe(ref d, (nuint)j);
                acc += v;
            }
        float sum = Vector256.Sum(acc);
        for (; j < n; j++)
        {
            float v = MathF.Abs(Tensors.BFloat16Conversion.ToSingle(x[j]) - Tensors.BFloat16Conversion.ToSingle(b[j]));
            Unsafe.Add(ref d, j) = v;
            sum += v;
        }
        return sum;
    }

    /// <summary>Which lanes of a delta vector a mask keeps (kept lanes as is, dropped lanes 0), given the lanes' positions in the block and the first lane's element index.</summary>
    private interface IKeep
    {
        Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first);
    }

    private readonly struct KeepAll : IKeep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first) => d;
    }

    /// <summary>
    /// A key's tie index made relative to a block of <paramref name="blockLength"/> elements from <paramref name="blockStart"/>,
    /// once per block (clamped to the block first: it may be long.MinValue / long.MaxValue), for <see cref="AtLeast"/>.
    /// </summary>
    internal static Vector256<int> TieIndex(long index, long blockStart, int blockLength) =>
        Vector256.Create((int)(Math.Clamp(index, blockStart - 1, blockStart + blockLength) - blockStart));

    /// <summary>
    /// The lanes where (key, index) &gt;= low without branches, as <see cref="MaskKey.AtLeast"/> decides it: key &gt; low, or
    /// key = low at a block index &gt;= the <see cref="TieIndex"/> <paramref name="loTie"/> (index &gt;= loTie ⇔ !(loTie &gt; index)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> AtLeast(Vector256<float> key, Vector256<float> low, Vector256<int> loTie, Vector256<int> blockIndex) =>
        Vector256.GreaterThan(key, low) | Vector256.AndNot(Vector256.Equals(key, low), Vector256.GreaterThan(loTie, blockIndex).AsSingle());

    /// <summary>
    /// low &lt;= (|d|, index) &lt;= high without branches: <see cref="AtLeast"/> low and (|d| &lt; hi or |d| = hi at an
    /// index &lt;= the high tie index), the tie indices made block-relative once.
    /// </summary>
    private readonly struct KeepRange(MaskKey low, MaskKey high, long blockStart, int blockLength) : IKeep
    {
        private readonly Vector256<float> _lo = Vector256.Create(low.Value);
        private readonly Vector256<float> _hi = Vector256.Create(high.Value);
        private readonly Vector256<int> _loTie = TieIndex(low.Index, blockStart, blockLength);
        private readonly Vector256<int> _hiTie = TieIndex(high.Index, blockStart, blockLength);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first)
        {
            var a = Vector256.Abs(d);
            // index <= hiTie  <=>  !(index > hiTie)
            var atHi = Vector256.AndNot(Vector256.Equals(a, _hi), Vector256.GreaterThan(blockIndex, _hiTie).AsSingle());
            return (AtLeast(a, _lo, _loTie, blockIndex) & (Vector256.LessThan(a, _hi) | atHi)) & d;
        }
    }

    /// <summary><see cref="KeepRange"/> with no upper bound (<see cref="MaskKey.Max"/>: every non-NaN value is below it): the magnitude top-k.</summary>
    private readonly struct KeepAbove(MaskKey low, long blockStart, int blockLength) : IKeep
    {
        private readonly Vector256<float> _lo = Vector256.Create(low.Value);
        private readonly Vector256<int> _loTie = TieIndex(low.Index, blockStart, blockLength);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first) => AtLeast(Vector256.Abs(d), _lo, _loTie, blockIndex) & d;
    }

    /// <summary><see cref="KeepAbove"/> over a range its tie index does not cut: |d| ≥ a float bound (<see cref="Bound"/>).</summary>
    private readonly struct KeepAtLeast(float low) : IKeep
    {
        private readonly Vector256<float> _lo = Vector256.Create(low);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first) => Vector256.GreaterThanOrEqual(Vector256.Abs(d), _lo) & d;
    }

    /// <summary><see cref="KeepRange"/> over a range neither tie index cuts: low ≤ |d| ≤ high for float bounds (<see cref="Bound"/>).</summary>
    private readonly struct KeepBetween(float low, float high) : IKeep
    {
        private readonly Vector256<float> _lo = Vector256.Create(low);
        private readonly Vector256<float> _hi = Vector256.Create(high);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first)
        {
            var a = Vector256.Abs(d);
            return Vector256.GreaterThanOrEqual(a, _lo) & Vector256.LessThanOrEqual(a, _hi) & d;
        }
    }

    private readonly struct KeepBits(ulong[] words) : IKeep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> d, Vector256<int> blockIndex, long first) =>
            ByteMasks[(int)((words[first >> 6] >> (int)(first & 63)) & 0xFF)].AsVector256().AsSingle() & d;
    }

    /// <summary>Most models the vectorised <see cref="MergeChunk"/> handles; more use the scalar path.</summary>
    public const int MaxVectorModels = 16;

    /// <summary>The scalar definition of <see cref="MergeChunk"/> for the whole chunk.</summary>
    public static long MergeChunkReference(float[][] x, int m, Span<float> b, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor,
        float lambda, Span<double> ss)
    {
        long conflicts = 0;
        for (int j = 0; j < b.Length; j++) conflicts += MergeElement(x, m, b, j, start, masks, weights, flip, consensus, basis, tieSign, countDivisor, normalize, scalarDivisor, lambda, ss) ? 1 : 0;
        return conflicts;
    }

    private static bool MergeElement(float[][] x, int m, Span<float> b, int j, long start, IReadOnlyList<SparseMask?> masks, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> flip, bool consensus, ElectionBasis basis, float tieSign, bool countDivisor, bool normalize, float scalarDivisor,
        float lambda, Span<double> ss)
    {
        float election = 0, mixed = 0, max = 0, min = 0;
        Span<float> dd = m <= 64 ? stackalloc float[m] : new float[m];
        for (int i = 0; i < m; i++)
        {
            float d = x[i][j] - b[j];
            ss[i] += (double)d * d;
            var mask = masks[i];
            long e = start + j;
            bool keep = mask is null || mask.IsAll || (mask.Bits is not null ? mask.Bits.Get(e) : SparseMask.InRange(MathF.Abs(d), e, mask.Low, mask.High));
            float mi = keep ? d * (mask?.ElementScale is { } es ? es.Slice(e, 1)[0] : mask?.Scale ?? 1f) : 0f;
            float di = mi * weights[i];
            dd[i] = di;
            election += basis == ElectionBasis.Unweighted ? mi : basis == ElectionBasis.Weighted ? di : MathF.Sign(di);
            max = i == 0 ? mi : MathF.Max(max, mi);
            min = i == 0 ? mi : MathF.Min(min, mi);
            mixed += di;
        }
        if (consensus)
        {
            float mix = 0, div = 0;
            int elected = election > 0 ? 1 : election < 0 ? -1 : Math.Sign(tieSign);
            for (int i = 0; i < m; i++)
                if (elected != 0 && MathF.Sign(flip[i] > 0 ? dd[i] : -dd[i]) == elected)
                {
                    mix += dd[i];
                    div += countDivisor ? 1f : weights[i];
                }
            if (div == 0) div = 1;
            b[j] += lambda * (normalize ? mix / div : mix);
        }
        else b[j] += lambda / (normalize ? scalarDivisor : 1f) * mixed;
        return max > 0 && min < 0;
    }

    /// <summary>Lane mask of low &lt;= (|d|, index) &lt;= high for the 8 elements starting at <paramref name="first"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<int> RangeKeep(Vector<float> d, long first, Vector<float> vLo, Vector<float> vHi, long loIndex, long hiIndex)
    {
        var a = Vector.Abs(d);
        var keep = Vector.GreaterThan(a, vLo) & Vector.LessThan(a, vHi);
        var atLo = Vector.Equals(a, vLo);
        var atHi = Vector.Equals(a, vHi);
        if (Vector.EqualsAll(atLo | atHi, Vector<int>.Zero)) return keep;
        var loOk = Vector.GreaterThanOrEqual(Lanes, new Vector<int>(RelativeIndex(loIndex, first)));
        var hiOk = Vector.LessThanOrEqual(Lanes, new Vector<int>(RelativeIndex(hiIndex, first)));
        return keep | (atLo & loOk & (Vector.LessThan(a, vHi) | (atHi & hiOk))) | (atHi & hiOk & Vector.GreaterThan(a, vLo));
    }

    /// <summary>
    /// The TIES disjoint merge of one chunk, written into <paramref name="b"/>: per element the elected sign is +
    /// where <c>sum &gt; 0</c> (or = 0 with <paramref name="tieSign"/> &gt; 0), − where &lt; 0; model i agrees where
    /// <c>sign(D_i · flip_i)</c> equals it (zeros never agree); <c>mixed = Σ agree D_i</c>,
    /// <c>divisor = Σ agree w_i</c> (or the count; 0 → 1, then at least <paramref name="divisorFloor"/> when that is positive);
    /// <c>b += λ · (normalize ? mixed / divisor : mixed)</c>.
    /// Returns the number of elements where the masked deltas have both signs (from <paramref name="max"/>/<paramref name="min"/>).
    /// </summary>
    public static long Combine(float[][] d, int m, Span<float> b, ReadOnlySpan<float> sum, ReadOnlySpan<float> weights, ReadOnlySpan<float> flip,
        float tieSign, bool countDivisor, bool normalize, float lambda, float divisorFloor, ReadOnlySpan<float> max, ReadOnlySpan<float> min)
    {
        int n = b.Length, j = 0, w = Vector<float>.Count;
        long conflicts = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var zero = Vector<float>.Zero;
            var one = Vector<float>.One;
            var vLambda = new Vector<float>(lambda);
            var vFloor = new Vector<float>(divisorFloor);
            var cnt = Vector<int>.Zero;
            for (; j <= n - w; j += w)
            {
                var s = new Vector<float>(sum.Slice(j, w));
                var pos = Vector.GreaterThan(s, zero) | (tieSign > 0 ? Vector.Equals(s, zero) : Vector<int>.Zero);
                var neg = Vector.LessThan(s, zero) | (tieSign < 0 ? Vector.Equals(s, zero) : Vector<int>.Zero);
                var mix = zero;
                var div = zero;
                for (int i = 0; i < m; i++)
                {
                    var di = new Vector<float>(d[i], j);
                    var basis = flip[i] > 0 ? di : -di;
                    var agree = (pos & Vector.GreaterThan(basis, zero)) | (neg & Vector.LessThan(basis, zero));
                    mix += Vector.ConditionalSelect(agree, di, zero);
                    div += Vector.ConditionalSelect(agree, new Vector<float>(countDivisor ? 1f : weights[i]), zero);
                }
                div = Vector.ConditionalSelect(Vector.Equals(div, zero), one, div);
                if (divisorFloor > 0) div = Vector.Max(div, vFloor);
                if (normalize) mix /= div;
                (new Vector<float>(b.Slice(j, w)) + vLambda * mix).CopyTo(b.Slice(j, w));
                cnt -= Vector.GreaterThan(new Vector<float>(max.Slice(j, w)), zero) & Vector.LessThan(new Vector<float>(min.Slice(j, w)), zero);
            }
            conflicts = Vector.Sum(cnt);
        }
        for (; j < n; j++)
        {
            var (mix, div) = CombineElement(d, m, j, sum[j], weights, flip, tieSign, countDivisor);
            if (divisorFloor > 0) div = MathF.Max(div, divisorFloor);
            b[j] += lambda * (normalize ? mix / div : mix);
            if (max[j] > 0 && min[j] < 0) conflicts++;
        }
        return conflicts;
    }

    /// <summary>The scalar definition of one element of <see cref="Combine"/> (before normalisation): (mixed, divisor).</summary>
    public static (float Mixed, float Divisor) CombineElement(float[][] d, int m, int j, float sum, ReadOnlySpan<float> weights, ReadOnlySpan<float> flip,
        float tieSign, bool countDivisor)
    {
        float mix = 0, div = 0;
        int elected = sum > 0 ? 1 : sum < 0 ? -1 : Math.Sign(tieSign);
        for (int i = 0; i < m; i++)
        {
            float di = d[i][j];
            if (elected != 0 && MathF.Sign(flip[i] > 0 ? di : -di) == elected)
            {
                mix += di;
                div += countDivisor ? 1f : weights[i];
            }
        }
        return (mix, div == 0 ? 1f : div);
    }

    /// <summary>Effectively computes <c>Σ |d[j]|</c> over the elements whose bit is set in <paramref name="words"/> (FP64 across blocks).</summary>
    public static double MaskedSumOfMagnitudes(ReadOnlySpan<float> d, ReadOnlySpan<ulong> words)
    {
        double total = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<float>.Count == 8)
        {
            var acc = Vector<float>.Zero;
            int block = 0;
            for (; i <= d.Length - 8; i += 8)
            {
                int byteValue = (int)((words[i >> 6] >> (i & 63)) & 0xFF);
                acc += Vector.ConditionalSelect(ByteMasks[byteValue], Vector.Abs(new Vector<float>(d.Slice(i, 8))), Vector<float>.Zero);
                if (++block == 128)
                {
                    total += Vector.Sum(acc);
                    acc = Vector<float>.Zero;
                    block = 0;
                }
            }
            total += Vector.Sum(acc);
        }
        for (; i < d.Length; i++)
            if (((words[i >> 6] >> (i & 63)) & 1) != 0) total += MathF.Abs(d[i]);
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Sign(Vector<float> v) =>
        Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<float>.Zero), Vector<float>.One, Vector<float>.Zero)
        - Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), Vector<float>.One, Vector<float>.Zero);

    private static Vector<int>[] BuildByteMasks()
    {
        var table = new Vector<int>[256];
        if (Vector<int>.Count != 8) return table;
        Span<int> lanes = stackalloc int[8];
        for (int v = 0; v < 256; v++)
        {
            for (int j = 0; j < 8; j++) lanes[j] = (v >> j & 1) != 0 ? -1 : 0;
            table[v] = new Vector<int>(lanes);
        }
        return table;
    }
}
