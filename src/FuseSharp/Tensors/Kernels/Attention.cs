using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Sizes of one attention call. Queries and outputs are token-major, <c>(B, Tq, H, D)</c>: the layout the QKV
/// projection produces and the output projection consumes. Keys and values live in a cache laid out
/// <c>(B, KV, KeyCapacity, D)</c>; the queries occupy slots <c>QueryStart .. QueryStart + Tq − 1</c> of it and attend
/// to slots <c>0 .. KeyLength − 1</c>. A plain (uncached) forward has <c>QueryStart = 0</c>,
/// <c>KeyLength = KeyCapacity = Tq</c>.
/// </summary>
public readonly record struct AttentionShape(int Batch, int QueryLength, int Heads, int KvHeads, int HeadDim, int KeyLength, int KeyCapacity, int QueryStart)
{
    /// <summary>Query heads per KV head (grouped-query attention; query head h reads KV head h / group).</summary>
    public int Group => Heads / KvHeads;
}

/// <summary>Which keys a query sees and what is added to its scores.</summary>
public ref struct AttentionOptions
{
    /// <summary>Multiplies q·k (usually 1/sqrt(D)).</summary>
    public float Scale;

    /// <summary>A query sees only slots up to its own.</summary>
    public bool Causal;

    /// <summary>When positive, a query at position p sees keys at positions p − W + 1 .. p only (Mistral's window).</summary>
    public int SlidingWindow;

    /// <summary>ALiBi (Press et al. 2021, https://arxiv.org/abs/2108.12409): <c>slope[h] · (pos_k − pos_q)</c> added to the scores; empty for none.</summary>
    public ReadOnlySpan<float> AlibiSlopes;

    /// <summary><c>(B, KeyCapacity)</c>, non-zero where a slot holds a real token (padding mask); empty when all are real.</summary>
    public ReadOnlySpan<byte> KeyValid;

    /// <summary><c>(B, KeyCapacity)</c> position of the token in each slot (for windows and ALiBi); empty when position = slot.</summary>
    public ReadOnlySpan<int> Positions;
}

/// <summary>
/// Scaled dot-product attention, fused in the manner of FlashAttention (Dao et al. 2022,
/// https://arxiv.org/abs/2205.14135): keys are visited in blocks of 64 and the softmax is computed online
/// (running max and sum per query row, earlier partial outputs rescaled when the max grows), so the
/// <c>(T, T)</c> score matrix never exists; the working set is a few blocks per thread whatever the length.
/// Work is split over (batch, KV head, query block); the query heads of a GQA group are processed together so
/// each key/value block is read once per group. Scores and sums are float32.
/// <para>A query with no visible key (all keys masked) gets a zero output and log-sum-exp −∞.</para>
/// <para>Backward (FlashAttention-2 style) needs q, k, v, the output and the saved log-sum-exp per
/// <c>(b, h, t)</c>: with <c>P = exp(S − lse)</c>, <c>dV = Pᵀ dO</c>, <c>dS = P ∘ (dO Vᵀ − rowsum(dO ∘ O))</c>,
/// <c>dQ = scale · dS K</c>, <c>dK = scale · dSᵀ Q</c>.</para>
/// </summary>
public static class Attention
{
    private const int KeyBlock = 64;
    private const int TargetRows = 32;

    /// <summary>Computes the attention output for every query.</summary>
    /// <param name="q">Queries <c>(B, Tq, H, D)</c>.</param>
    /// <param name="k">Keys <c>(B, KV, KeyCapacity, D)</c>.</param>
    /// <param name="v">Values, laid out as the keys.</param>
    /// <param name="shape">Sizes.</param>
    /// <param name="options">Masking and biases.</param>
    /// <param name="output">Output <c>(B, Tq, H, D)</c>.</param>
    /// <param name="logSumExp">Optional <c>(B, H, Tq)</c> log-sum-exp of the scaled scores (for a backward pass).</param>
    public static unsafe void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, AttentionShape shape, AttentionOptions options,
        Span<float> output, Span<float> logSumExp = default)
    {
        Validate(q, k, v, shape, options, output, logSumExp);
        int g = shape.Group, d = shape.HeadDim;
        int qBlock = Math.Max(1, TargetRows / g);
        int qBlocks = (shape.QueryLength + qBlock - 1) / qBlock;
        int tasks = shape.Batch * shape.KvHeads * qBlocks;
        long work = 2L * Math.Min(qBlock, shape.QueryLength) * g * shape.KeyLength * d; // per task: decoding steps stay on the calling thread
        var o = options;
        var ctx = new Context
        {
            Shape = shape,
            QBlock = qBlock,
            QBlocks = qBlocks,
            Scale = o.Scale,
            Causal = o.Causal,
            Window = o.SlidingWindow,
        };
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pa = o.AlibiSlopes)
        fixed (byte* pm = o.KeyValid)
        fixed (int* pp = o.Positions)
        {
            ctx.Q = pq; ctx.K = pk; ctx.V = pv; ctx.O = po;
            ctx.Lse = logSumExp.IsEmpty ? null : pl;
            ctx.Alibi = o.AlibiSlopes.IsEmpty ? null : pa;
            ctx.KeyValid = o.KeyValid.IsEmpty ? null : pm;
            ctx.Positions = o.Positions.IsEmpty ? null : pp;
            var c = ctx;
            ParallelRows.For(tasks, work, (start, end) =>
            {
                if (shape.QueryLength == 1)
                {
                    for (int task = start; task < end; task++) RunSingleQuery(c, task);
                    return;
                }
                var scratch = Scratch.For((qBlock * g + 7) & ~7, d);
                for (int task = start; task < end; task++) RunTask(c, task, scratch);
            });
        }
    }

    /// <summary>
    /// The scalar reference: for every (b, h, t) the full row of scores in float64, masked, softmaxed and applied
    /// to the values. Same arguments as <see cref="Forward"/>.
    /// </summary>
    public static void ForwardReference(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, AttentionShape shape, AttentionOptions options,
        Span<float> output, Span<float> logSumExp = default)
    {
        Validate(q, k, v, shape, options, output, logSumExp);
        int h_ = shape.Heads, d = shape.HeadDim, cap = shape.KeyCapacity, g = shape.Group;
        var scores = new double[shape.KeyLength];
        var acc = new double[d];
        for (int b = 0; b < shape.Batch; b++)
        {
            for (int t = 0; t < shape.QueryLength; t++)
            {
                int qs = shape.QueryStart + t;
                for (int h = 0; h < h_; h++)
                {
                    int kvh = h / g;
                    int qOff = ((b * shape.QueryLength + t) * h_ + h) * d;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < shape.KeyLength; j++)
                    {
                        scores[j] = double.NegativeInfinity;
                        if (!Visible(options.Causal, options.SlidingWindow, options.KeyValid, options.Positions, b, cap, qs, j)) continue;
                        int kOff = ((b * shape.KvHeads + kvh) * cap + j) * d;
                        double s = 0;
                        for (int i = 0; i < d; i++) s += (double)q[qOff + i] * k[kOff + i];
                        s *= options.Scale;
                        if (!options.AlibiSlopes.IsEmpty)
                            s += options.AlibiSlopes[h] * (double)(Pos(options.Positions, b, cap, j) - Pos(options.Positions, b, cap, qs));
                        scores[j] = s;
                        max = Math.Max(max, s);
                    }
                    Array.Clear(acc);
                    double sum = 0;
                    if (!double.IsNegativeInfinity(max))
                    {
                        for (int j = 0; j < shape.KeyLength; j++)
                        {
                            if (double.IsNegativeInfinity(scores[j])) continue;
                            double p = Math.Exp(scores[j] - max);
                            sum += p;
                            int vOff = ((b * shape.KvHeads + kvh) * cap + j) * d;
                            for (int i = 0; i < d; i++) acc[i] += p * v[vOff + i];
                        }
                    }
                    for (int i = 0; i < d; i++) output[qOff + i] = sum > 0 ? (float)(acc[i] / sum) : 0f;
                    if (!logSumExp.IsEmpty)
                        logSumExp[(b * h_ + h) * shape.QueryLength + t] = sum > 0 ? (float)(max + Math.Log(sum)) : float.NegativeInfinity;
                }
            }
        }
    }

    private static int Pos(ReadOnlySpan<int> positions, int b, int cap, int slot) => positions.IsEmpty ? slot : positions[b * cap + slot];

    private static bool Visible(bool causal, int window, ReadOnlySpan<byte> keyValid, ReadOnlySpan<int> positions, int b, int cap, int qs, int ks)
    {
        if (causal && ks > qs) return false;
        if (!keyValid.IsEmpty && keyValid[b * cap + ks] == 0) return false;
        if (window > 0 && Pos(positions, b, cap, qs) - Pos(positions, b, cap, ks) >= window) return false;
        return true;
    }

    private unsafe struct Context
    {
        public AttentionShape Shape;
        public int QBlock, QBlocks, Window;
        public float Scale;
        public bool Causal;
        public float* Q, K, V, O, Lse, Alibi;
        public byte* KeyValid;
        public int* Positions;
    }

    /// <summary>Per-thread work buffers, pinned, grown on demand.</summary>
    private sealed unsafe class Scratch
    {
        [ThreadStatic] private static Scratch? _current;
        [ThreadStatic] private static float[]? _scores;

        private float[] _buffer = [];

        /// <summary>The calling thread's buffer of at least <paramref name="count"/> scores (the one-query path's rows).</summary>
        public static float* Scores(int count)
        {
            if (_scores is null || _scores.Length < count) _scores = GC.AllocateUninitializedArray<float>(Math.Max(count, 256), pinned: true);
            return (float*)Unsafe.AsPointer(ref _scores[0]);
        }

        /// <summary>Qt (D × R) scaled queries, one column per row; St (KeyBlock × R) scores then probabilities;
        /// O (rows × D) unnormalised outputs; per-row running max, sum, block max and rescale factors.</summary>
        public float* Qt, St, O, M, L, BlockMax, Corr;

        public static Scratch For(int rowsPadded, int d)
        {
            var s = _current ??= new Scratch();
            long need = (long)d * rowsPadded + (long)KeyBlock * rowsPadded + (long)rowsPadded * d + 4L * rowsPadded + 64;
            if (s._buffer.Length < need) s._buffer = GC.AllocateUninitializedArray<float>(checked((int)need), pinned: true);
            float* p = (float*)Unsafe.AsPointer(ref s._buffer[0]);
            s.Qt = p; p += d * rowsPadded;
            s.St = p; p += KeyBlock * rowsPadded;
            s.O = p; p += rowsPadded * d;
            s.M = p; p += rowsPadded;
            s.L = p; p += rowsPadded;
            s.BlockMax = p; p += rowsPadded;
            s.Corr = p;
            return s;
        }
    }

    // One task: the query rows r = (token t0 + r / g, head kvh·g + r % g) of one (batch, KV head, query block).
    // Scores are kept transposed, St (keys × rows), so that everything per query row — running max, rescale,
    // exponentials, sums — runs across vector lanes, and K is read where it lies in the cache (no transpose):
    //   St = K_blk · Qt            (nk × R) = (nk × D)(D × R)
    //   P  = exp(St − m_new)        column-wise online softmax
    //   O  = O · corr + Pᵀ · V_blk  (R × D) += (R × nk)(nk × D), Pᵀ read through a transposed-A tile kernel
    private static unsafe void RunTask(in Context c, int task, Scratch w)
    {
        var s = c.Shape;
        int d = s.HeadDim, g = s.Group, cap = s.KeyCapacity;
        int qb = task % c.QBlocks;
        int kvh = task / c.QBlocks % s.KvHeads;
        int b = task / c.QBlocks / s.KvHeads;
        int t0 = qb * c.QBlock, t1 = Math.Min(s.QueryLength, t0 + c.QBlock);
        int rows = (t1 - t0) * g;
        int rp = (rows + 7) & ~7; // rows padded to whole vectors; padded columns score 0 and are dropped
        float* kBase = c.K + (long)(b * s.KvHeads + kvh) * cap * d;
        float* vBase = c.V + (long)(b * s.KvHeads + kvh) * cap * d;

        new Span<float>(w.Qt, d * rp).Clear();
        for (int r = 0; r < rows; r++)
        {
            int t = t0 + r / g, h = kvh * g + r % g;
            float* qr = c.Q + ((long)(b * s.QueryLength + t) * s.Heads + h) * d;
            for (int i = 0; i < d; i++) w.Qt[i * rp + r] = qr[i] * c.Scale;
        }
        for (int r = 0; r < rp; r++)
        {
            w.M[r] = float.NegativeInfinity;
            w.L[r] = 0;
        }
        new Span<float>(w.O, rows * d).Clear();

        int firstSlot = s.QueryStart + t0, lastSlot = s.QueryStart + t1 - 1;
        int kEnd = c.Causal ? Math.Min(s.KeyLength, lastSlot + 1) : s.KeyLength;
        int kBegin = c.Window > 0 && c.Positions == null ? Math.Max(0, firstSlot - c.Window + 1) : 0;
        bool anyMask = c.KeyValid != null || c.Window > 0 || c.Alibi != null;
        for (int j0 = kBegin; j0 < kEnd; j0 += KeyBlock)
        {
            int nk = Math.Min(KeyBlock, kEnd - j0);
            if (rows >= 4)
            {
                TileMultiply(kBase + (long)j0 * d, d, w.Qt, rp, w.St, rp, nk, rp, d, transposedA: false, accumulate: false);
            }
            else
            {
                // Few rows (2-3 query tokens without GQA; one token goes to RunSingleQuery): one dot product per key straight from q and the cache.
                for (int r = 0; r < rp; r++)
                {
                    if (r >= rows)
                    {
                        for (int j = 0; j < nk; j++) w.St[j * rp + r] = 0f;
                        continue;
                    }
                    int t = t0 + r / g, h = kvh * g + r % g;
                    var qr = new ReadOnlySpan<float>(c.Q + ((long)(b * s.QueryLength + t) * s.Heads + h) * d, d);
                    for (int j = 0; j < nk; j++)
                        w.St[j * rp + r] = c.Scale * TensorPrimitives.Dot(qr, new ReadOnlySpan<float>(kBase + (long)(j0 + j) * d, d));
                }
            }
            if (anyMask) MaskBlock(c, b, kvh, t0, rows, j0, nk, w.St, rp, 1);
            else if (c.Causal && j0 + nk - 1 > firstSlot) MaskCausal(s.QueryStart + t0, g, rows, rp, j0, nk, w.St);
            if (!SoftmaxBlock(w, nk, rp)) continue;
            for (int r = 0; r < rows; r++)
            {
                float corr = w.Corr[r];
                if (corr != 1f) Scale(w.O + r * d, d, corr);
            }
            TileMultiply(w.St, rp, vBase + (long)j0 * d, d, w.O, d, rows, d, nk, transposedA: true, accumulate: true);
        }

        for (int r = 0; r < rows; r++)
        {
            int t = t0 + r / g, h = kvh * g + r % g;
            var dst = new Span<float>(c.O + ((long)(b * s.QueryLength + t) * s.Heads + h) * d, d);
            float l = w.L[r];
            if (l > 0) TensorPrimitives.Multiply(new ReadOnlySpan<float>(w.O + r * d, d), 1f / l, dst);
            else dst.Clear();
            if (c.Lse != null) c.Lse[((long)b * s.Heads + h) * s.QueryLength + t] = l > 0 ? w.M[r] + MathF.Log(l) : float.NegativeInfinity;
        }
    }

    /// <summary>
    /// A decoding step, one query token per batch row (task = (b, KV head)): the g query heads of the KV head against
    /// every visible key at once, a plain row of scores per head instead of padded rows and key blocks:
    /// <c>s_j = scale · q·k_j</c> (masked, ALiBi added), <c>p_j = exp(s_j − max s)</c>,
    /// <c>o = Σ_j p_j v_j / Σ_j p_j</c> (keys with <c>p_j = 0</c> skipped, as in the reference). Same masks and
    /// edge cases as the blocked path (no visible key: zeros and log-sum-exp −∞); the blocked path's online softmax
    /// rescales per block of keys, so the two agree to rounding, not bit for bit.
    /// </summary>
    private static unsafe void RunSingleQuery(in Context c, int task)
    {
        var s = c.Shape;
        int d = s.HeadDim, g = s.Group, cap = s.KeyCapacity;
        int kvh = task % s.KvHeads, b = task / s.KvHeads;
        int qs = s.QueryStart;
        int kEnd = c.Causal ? Math.Min(s.KeyLength, qs + 1) : s.KeyLength;
        int kBegin = c.Window > 0 && c.Positions == null ? Math.Max(0, qs - c.Window + 1) : 0;
        int nk = Math.Max(0, kEnd - kBegin);
        float* kBase = c.K + ((long)(b * s.KvHeads + kvh) * cap + kBegin) * d;
        float* vBase = c.V + ((long)(b * s.KvHeads + kvh) * cap + kBegin) * d;
        float* q = c.Q + ((long)b * s.Heads + kvh * g) * d; // the group's g heads, one after the other
        float* o = c.O + ((long)b * s.Heads + kvh * g) * d;
        float* scores = Scratch.Scores(g * nk); // (g, nk)
        for (int j = 0; j < nk; j++)
        {
            float* kj = kBase + (long)j * d;
            for (int r = 0; r < g; r++) scores[r * nk + j] = c.Scale * Dot(q + r * d, kj, d);
        }
        if (c.KeyValid != null || c.Window > 0 || c.Alibi != null) MaskBlock(c, b, kvh, 0, g, kBegin, nk, scores, 1, nk);
        for (int r = 0; r < g; r++)
        {
            var row = new Span<float>(scores + r * nk, nk);
            float max = nk > 0 ? TensorPrimitives.Max<float>(row) : float.NegativeInfinity;
            float l = 0;
            if (!float.IsNegativeInfinity(max))
            {
                TensorPrimitives.Subtract(row, max, row);
                TensorPrimitives.Exp(row, row);
                l = TensorPrimitives.Sum<float>(row);
            }
            float* dst = o + r * d;
            if (l > 0) WeightedSum(scores + r * nk, vBase, nk, d, 1f / l, dst);
            else new Span<float>(dst, d).Clear();
            if (c.Lse != null) c.Lse[(long)b * s.Heads + kvh * g + r] = l > 0 ? max + MathF.Log(l) : float.NegativeInfinity;
        }
    }

    /// <summary>x·y over n floats: two chains of 8 lanes over whole 16-steps, one for an 8-step left, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Dot(float* x, float* y, int n)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), a1);
            }
            if (i + 8 <= n)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), a0);
                i += 8;
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    /// <summary>
    /// <c>dst = scale · Σ_j p_j v_j</c> over <paramref name="nk"/> rows of v (length <paramref name="d"/>, contiguous),
    /// skipping p_j = 0 (masked keys); 32 columns at a time in registers across all keys, then 8, then scalar.
    /// </summary>
    private static unsafe void WeightedSum(float* p, float* v, int nk, int d, float scale, float* dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var f = Vector256.Create(scale);
            for (; i + 32 <= d; i += 32)
            {
                Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero, a2 = Vector256<float>.Zero, a3 = Vector256<float>.Zero;
                float* vj = v + i;
                for (int j = 0; j < nk; j++, vj += d)
                {
                    if (p[j] == 0f) continue;
                    var pj = Vector256.Create(p[j]);
                    a0 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(vj), a0);
                    a1 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(vj + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(vj + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(vj + 24), a3);
                }
                Vector256.Store(a0 * f, dst + i);
                Vector256.Store(a1 * f, dst + i + 8);
                Vector256.Store(a2 * f, dst + i + 16);
                Vector256.Store(a3 * f, dst + i + 24);
            }
            for (; i + 8 <= d; i += 8)
            {
                var a = Vector256<float>.Zero;
                float* vj = v + i;
                for (int j = 0; j < nk; j++, vj += d)
                    if (p[j] != 0f) a = Vector256.FusedMultiplyAdd(Vector256.Create(p[j]), Vector256.Load(vj), a);
                Vector256.Store(a * f, dst + i);
            }
        }
        for (; i < d; i++)
        {
            float a = 0;
            for (int j = 0; j < nk; j++)
                if (p[j] != 0f) a += p[j] * v[(long)j * d + i];
            dst[i] = a * scale;
        }
    }

    /// <summary>Causal mask only: row r (query slot qs) sees keys up to qs, so entries from key qs + 1 on become −∞.</summary>
    private static unsafe void MaskCausal(int firstQuerySlot, int g, int rows, int rp, int j0, int nk, float* st)
    {
        for (int r = 0; r < rows; r++)
        {
            int qs = firstQuerySlot + r / g;
            for (int j = Math.Max(0, qs + 1 - j0); j < nk; j++) st[j * rp + r] = float.NegativeInfinity;
        }
    }

    private static unsafe void Scale(float* x, int n, float factor)
    {
        int i = 0;
        var f = Vector256.Create(factor);
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(x + i) * f, x + i);
        for (; i < n; i++) x[i] *= factor;
    }

    /// <summary>
    /// Sets invisible scores of the block to −∞ and adds ALiBi biases; the score of key j0 + j and row r is at
    /// <c>st[j · keyStride + r · rowStride]</c> (St, keys × rows, or one row of keys per query row).
    /// </summary>
    private static unsafe void MaskBlock(in Context c, int b, int kvh, int t0, int rows, int j0, int nk, float* st, nint keyStride, nint rowStride)
    {
        int cap = c.Shape.KeyCapacity, g = c.Shape.Group;
        long rowBase = (long)b * cap;
        for (int r = 0; r < rows; r++)
        {
            int qs = c.Shape.QueryStart + t0 + r / g, h = kvh * g + r % g;
            int pq = c.Positions != null ? c.Positions[rowBase + qs] : qs;
            float slope = c.Alibi != null ? c.Alibi[h] : 0f;
            for (int j = 0; j < nk; j++)
            {
                int ks = j0 + j;
                int pk = c.Positions != null ? c.Positions[rowBase + ks] : ks;
                float* e = st + j * keyStride + r * rowStride;
                if ((c.Causal && ks > qs) || (c.KeyValid != null && c.KeyValid[rowBase + ks] == 0) || (c.Window > 0 && pq - pk >= c.Window))
                    *e = float.NegativeInfinity;
                else if (c.Alibi != null)
                    *e += slope * (pk - pq);
            }
        }
    }

    /// <summary>
    /// Online-softmax update for one block, across the row lanes: block max per row, new running max, rescale factor
    /// (into Corr), St ← exp(St − max) and the running sums. Rows with nothing visible so far keep max −∞ (their
    /// probabilities are exactly 0). Returns false when no row sees any key of the block.
    /// </summary>
    private static unsafe bool SoftmaxBlock(Scratch w, int nk, int rp)
    {
        float* st = w.St;
        bool any = false;
        for (int r = 0; r < rp; r += 8)
        {
            var max = Vector256.Create(float.NegativeInfinity);
            for (int j = 0; j < nk; j++) max = Vector256.Max(max, Vector256.Load(st + j * rp + r));
            var mOld = Vector256.Load(w.M + r);
            var mNew = Vector256.Max(mOld, max);
            var negInf = Vector256.Create(float.NegativeInfinity);
            var visible = ~Vector256.Equals(mNew, negInf);
            if (visible != Vector256<float>.Zero) any = true;
            // Shift by 0 where nothing is visible yet, so exp(−∞ − shift) is 0 rather than NaN.
            var shift = Vector256.ConditionalSelect(visible, mNew, Vector256<float>.Zero);
            var corr = Vector256.Exp(mOld - shift);
            var sum = Vector256.Load(w.L + r) * corr;
            for (int j = 0; j < nk; j++)
            {
                var e = Vector256.Exp(Vector256.Load(st + j * rp + r) - shift);
                Vector256.Store(e, st + j * rp + r);
                sum += e;
            }
            Vector256.Store(mNew, w.M + r);
            Vector256.Store(sum, w.L + r);
            Vector256.Store(corr, w.Corr + r);
        }
        return any;
    }

    /// <summary>
    /// <c>C (rows × n) (+)= A (rows × k) · B (k × n)</c>, row-major with leading dimensions; with
    /// <paramref name="transposedA"/>, A is given as Aᵀ (k × rows, element (r, p) at <c>a[p·lda + r]</c>). Register
    /// tiles of 4 rows × 16 columns: 8 Vector256 accumulators, each step two loads of B and four broadcasts of A.
    /// </summary>
    internal static unsafe void TileMultiply(float* a, int lda, float* b, int ldb, float* c, int ldc, int rows, int n, int k, bool transposedA, bool accumulate)
    {
        nint rs = transposedA ? 1 : lda, ps = transposedA ? lda : 1; // A(r, p) = a[r·rs + p·ps]
        int r = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; r + 4 <= rows; r += 4) Rows4(a + r * rs, rs, ps, b, ldb, c + (long)r * ldc, ldc, n, k, accumulate);
        for (; r < rows; r++) Rows1(a + r * rs, ps, b, ldb, c + (long)r * ldc, n, k, accumulate);
    }

    private static unsafe void Rows4(float* a, nint rs, nint ps, float* b, int ldb, float* c, int ldc, int n, int k, bool accumulate)
    {
        float* a1 = a + rs, a2 = a1 + rs, a3 = a2 + rs;
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        int j = 0;
        for (; j + 16 <= n; j += 16)
        {
            Vector256<float> x0 = default, y0 = default, x1 = default, y1 = default, x2 = default, y2 = default, x3 = default, y3 = default;
            if (accumulate)
            {
                x0 = Vector256.Load(c + j); y0 = Vector256.Load(c + j + 8);
                x1 = Vector256.Load(c1 + j); y1 = Vector256.Load(c1 + j + 8);
                x2 = Vector256.Load(c2 + j); y2 = Vector256.Load(c2 + j + 8);
                x3 = Vector256.Load(c3 + j); y3 = Vector256.Load(c3 + j + 8);
            }
            float* bp = b + j;
            nint o = 0;
            for (int p = 0; p < k; p++, bp += ldb, o += ps)
            {
                var b0 = Vector256.Load(bp);
                var b1 = Vector256.Load(bp + 8);
                var s0 = Vector256.Create(a[o]);
                x0 = Vector256.FusedMultiplyAdd(s0, b0, x0); y0 = Vector256.FusedMultiplyAdd(s0, b1, y0);
                var s1 = Vector256.Create(a1[o]);
                x1 = Vector256.FusedMultiplyAdd(s1, b0, x1); y1 = Vector256.FusedMultiplyAdd(s1, b1, y1);
                var s2 = Vector256.Create(a2[o]);
                x2 = Vector256.FusedMultiplyAdd(s2, b0, x2); y2 = Vector256.FusedMultiplyAdd(s2, b1, y2);
                var s3 = Vector256.Create(a3[o]);
                x3 = Vector256.FusedMultiplyAdd(s3, b0, x3); y3 = Vector256.FusedMultiplyAdd(s3, b1, y3);
            }
            Vector256.Store(x0, c + j); Vector256.Store(y0, c + j + 8);
            Vector256.Store(x1, c1 + j); Vector256.Store(y1, c1 + j + 8);
            Vector256.Store(x2, c2 + j); Vector256.Store(y2, c2 + j + 8);
            Vector256.Store(x3, c3 + j); Vector256.Store(y3, c3 + j + 8);
        }
        for (; j + 8 <= n; j += 8)
        {
            Vector256<float> x0 = default, x1 = default, x2 = default, x3 = default;
            if (accumulate)
            {
                x0 = Vector256.Load(c + j); x1 = Vector256.Load(c1 + j);
                x2 = Vector256.Load(c2 + j); x3 = Vector256.Load(c3 + j);
            }
            float* bp = b + j;
            nint o = 0;
            for (int p = 0; p < k; p++, bp += ldb, o += ps)
            {
                var b0 = Vector256.Load(bp);
                x0 = Vector256.FusedMultiplyAdd(Vector256.Create(a[o]), b0, x0);
                x1 = Vector256.FusedMultiplyAdd(Vector256.Create(a1[o]), b0, x1);
                x2 = Vector256.FusedMultiplyAdd(Vector256.Create(a2[o]), b0, x2);
                x3 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[o]), b0, x3);
            }
            Vector256.Store(x0, c + j); Vector256.Store(x1, c1 + j);
            Vector256.Store(x2, c2 + j); Vector256.Store(x3, c3 + j);
        }
        for (; j < n; j++)
        {
            float s0 = accumulate ? c[j] : 0, s1 = accumulate ? c1[j] : 0, s2 = accumulate ? c2[j] : 0, s3 = accumulate ? c3[j] : 0;
            nint o = 0;
            for (int p = 0; p < k; p++, o += ps)
            {
                float bv = b[(long)p * ldb + j];
                s0 += a[o] * bv; s1 += a1[o] * bv; s2 += a2[o] * bv; s3 += a3[o] * bv;
            }
            c[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
        }
    }

    private static unsafe void Rows1(float* a, nint ps, float* b, int ldb, float* c, int n, int k, bool accumulate)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 8 <= n; j += 8)
            {
                var x = accumulate ? Vector256.Load(c + j) : Vector256<float>.Zero;
                float* bp = b + j;
                nint o = 0;
                for (int p = 0; p < k; p++, bp += ldb, o += ps) x = Vector256.FusedMultiplyAdd(Vector256.Create(a[o]), Vector256.Load(bp), x);
                Vector256.Store(x, c + j);
            }
        }
        for (; j < n; j++)
        {
            float sum = accumulate ? c[j] : 0;
            nint o = 0;
            for (int p = 0; p < k; p++, o += ps) sum += a[o] * b[(long)p * ldb + j];
            c[j] = sum;
        }
    }

    private static void Validate(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, AttentionShape s, AttentionOptions o, Span<float> output, Span<float> lse)
    {
        if (s.Batch < 0 || s.QueryLength < 0 || s.Heads <= 0 || s.KvHeads <= 0 || s.HeadDim <= 0)
            throw new ArgumentException($"invalid attention shape {s}", nameof(s));
        if (s.Heads % s.KvHeads != 0) throw new ArgumentException($"{s.Heads} query heads are not a multiple of {s.KvHeads} KV heads", nameof(s));
        if (s.KeyLength < 0 || s.KeyLength > s.KeyCapacity || s.QueryStart < 0 || s.QueryStart + s.QueryLength > s.KeyCapacity)
            throw new ArgumentException($"key length {s.KeyLength} / query slots [{s.QueryStart}, {s.QueryStart + s.QueryLength}) do not fit capacity {s.KeyCapacity}", nameof(s));
        long qLen = (long)s.Batch * s.QueryLength * s.Heads * s.HeadDim;
        long kLen = (long)s.Batch * s.KvHeads * s.KeyCapacity * s.HeadDim;
        if (q.Length != qLen) throw new ArgumentException($"q has {q.Length} values, shape needs {qLen}", nameof(q));
        if (output.Length != qLen) throw new ArgumentException($"output has {output.Length} values, shape needs {qLen}", nameof(output));
        if (k.Length != kLen || v.Length != kLen) throw new ArgumentException($"k/v have {k.Length}/{v.Length} values, shape needs {kLen}", nameof(k));
        if (!lse.IsEmpty && lse.Length != (long)s.Batch * s.Heads * s.QueryLength) throw new ArgumentException("logSumExp must be (B, H, Tq)", nameof(lse));
        long slots = (long)s.Batch * s.KeyCapacity;
        if (!o.KeyValid.IsEmpty && o.KeyValid.Length != slots) throw new ArgumentException($"KeyValid must have (B, KeyCapacity) = {slots} entries", nameof(o));
        if (!o.Positions.IsEmpty && o.Positions.Length != slots) throw new ArgumentException($"Positions must have (B, KeyCapacity) = {slots} entries", nameof(o));
        if (!o.AlibiSlopes.IsEmpty && o.AlibiSlopes.Length != s.Heads) throw new ArgumentException($"AlibiSlopes must have {s.Heads} entries", nameof(o));
    }
}
