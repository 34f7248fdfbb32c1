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
        long work = 2L * qBlock * g * shape.KeyLength * d;
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
                var scratch = Scratch.For(qBlock * g, d);
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

        private float[] _buffer = [];

        public float* Qp, Kt, S, O, M, L;

        public static Scratch For(int rows, int d)
        {
            var s = _current ??= new Scratch();
            int dPad = (d + 7) & ~7;
            long need = (long)rows * dPad * 2 + (long)dPad * KeyBlock + (long)rows * KeyBlock + 2L * rows + 64;
            if (s._buffer.Length < need) s._buffer = GC.AllocateUninitializedArray<float>(checked((int)need), pinned: true);
            float* p = (float*)Unsafe.AsPointer(ref s._buffer[0]);
            s.Qp = p; p += rows * dPad;
            s.O = p; p += rows * dPad;
            s.Kt = p; p += dPad * KeyBlock;
            s.S = p; p += rows * KeyBlock;
            s.M = p; p += rows;
            s.L = p;
            return s;
        }
    }

    private static unsafe void RunTask(in Context c, int task, Scratch w)
    {
        var s = c.Shape;
        int d = s.HeadDim, g = s.Group, cap = s.KeyCapacity;
        int qb = task % c.QBlocks;
        int kvh = task / c.QBlocks % s.KvHeads;
        int b = task / c.QBlocks / s.KvHeads;
        int t0 = qb * c.QBlock, t1 = Math.Min(s.QueryLength, t0 + c.QBlock);
        int rows = (t1 - t0) * g;
        float* kBase = c.K + (long)(b * s.KvHeads + kvh) * cap * d;
        float* vBase = c.V + (long)(b * s.KvHeads + kvh) * cap * d;

        // Row r = (token t0 + r / g, head kvh·g + r % g); queries packed and pre-scaled.
        for (int r = 0; r < rows; r++)
        {
            int t = t0 + r / g, h = kvh * g + r % g;
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(c.Q + ((long)(b * s.QueryLength + t) * s.Heads + h) * d, d), c.Scale, new Span<float>(w.Qp + r * d, d));
            w.M[r] = float.NegativeInfinity;
            w.L[r] = 0;
        }
        new Span<float>(w.O, rows * d).Clear();

        int firstSlot = s.QueryStart + t0, lastSlot = s.QueryStart + t1 - 1;
        int kEnd = c.Causal ? Math.Min(s.KeyLength, lastSlot + 1) : s.KeyLength;
        int kBegin = c.Window > 0 && c.Positions == null ? Math.Max(0, firstSlot - c.Window + 1) : 0;
        bool useTiles = rows >= 4;
        for (int j0 = kBegin; j0 < kEnd; j0 += KeyBlock)
        {
            int nk = Math.Min(KeyBlock, kEnd - j0);
            // S = Qp · Kᵀ over the block: (rows × nk).
            if (useTiles)
            {
                int nkPad = (nk + 7) & ~7;
                Transpose(kBase + (long)j0 * d, nk, d, w.Kt, nkPad);
                for (int r = 0; r < rows; r++) new Span<float>(w.S + r * KeyBlock, nkPad).Clear();
                TileMultiplyAdd(w.Qp, d, w.Kt, nkPad, w.S, KeyBlock, rows, nkPad, d);
            }
            else
            {
                for (int r = 0; r < rows; r++)
                {
                    var qr = new ReadOnlySpan<float>(w.Qp + r * d, d);
                    for (int j = 0; j < nk; j++) w.S[r * KeyBlock + j] = TensorPrimitives.Dot(qr, new ReadOnlySpan<float>(kBase + (long)(j0 + j) * d, d));
                }
            }
            bool anyRow = false;
            for (int r = 0; r < rows; r++)
            {
                int qs = s.QueryStart + t0 + r / g, h = kvh * g + r % g;
                float* sr = w.S + r * KeyBlock;
                bool plain = c.KeyValid == null && c.Window <= 0 && c.Alibi == null && (!c.Causal || j0 + nk - 1 <= qs);
                if (!plain) MaskRow(c, b, h, qs, j0, nk, sr);
                float blockMax = TensorPrimitives.Max(new ReadOnlySpan<float>(sr, nk));
                if (float.IsNegativeInfinity(blockMax))
                {
                    new Span<float>(sr, nk).Clear(); // nothing visible in this block for this row: contributes nothing
                    continue;
                }
                anyRow = true;
                float mOld = w.M[r], mNew = MathF.Max(mOld, blockMax);
                if (mNew != mOld && w.L[r] != 0)
                {
                    float corr = MathF.Exp(mOld - mNew);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(w.O + r * d, d), corr, new Span<float>(w.O + r * d, d));
                    w.L[r] *= corr;
                }
                w.M[r] = mNew;
                w.L[r] += ExpShiftedInPlace(sr, nk, mNew);
            }
            if (!anyRow) continue;
            // O += P · V over the block: (rows × nk) · (nk × D).
            TileMultiplyAdd(w.S, KeyBlock, vBase + (long)j0 * d, d, w.O, d, rows, d, nk);
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

    private static unsafe void MaskRow(in Context c, int b, int h, int qs, int j0, int nk, float* sr)
    {
        int cap = c.Shape.KeyCapacity;
        long rowBase = (long)b * cap;
        int pq = c.Positions != null ? c.Positions[rowBase + qs] : qs;
        float slope = c.Alibi != null ? c.Alibi[h] : 0f;
        for (int j = 0; j < nk; j++)
        {
            int ks = j0 + j;
            int pk = c.Positions != null ? c.Positions[rowBase + ks] : ks;
            if ((c.Causal && ks > qs) || (c.KeyValid != null && c.KeyValid[rowBase + ks] == 0) || (c.Window > 0 && pq - pk >= c.Window))
                sr[j] = float.NegativeInfinity;
            else if (c.Alibi != null)
                sr[j] += slope * (pk - pq);
        }
    }

    /// <summary>x[j] = exp(x[j] − shift) for j &lt; n; returns the sum (−∞ entries become 0).</summary>
    private static unsafe float ExpShiftedInPlace(float* x, int n, float shift)
    {
        int j = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; j <= n - 8; j += 8)
            {
                var e = Vector256.Exp(Vector256.Load(x + j) - vs);
                Vector256.Store(e, x + j);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; j < n; j++)
        {
            float e = MathF.Exp(x[j] - shift);
            x[j] = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>dst (d × ldDst) = srcᵀ for src (n × d); columns n .. ldDst − 1 are zeroed.</summary>
    private static unsafe void Transpose(float* src, int n, int d, float* dst, int ldDst)
    {
        for (int i = 0; i < d; i++)
        {
            float* row = dst + (long)i * ldDst;
            for (int j = 0; j < n; j++) row[j] = src[(long)j * d + i];
            for (int j = n; j < ldDst; j++) row[j] = 0;
        }
    }

    /// <summary>
    /// <c>C (rows × n) += A (rows × k) · B (k × n)</c>, all row-major with leading dimensions. Register tiles of
    /// 4 rows × 16 columns (8 Vector256 accumulators; each step loads 2 vectors of B and broadcasts 4 values of A).
    /// </summary>
    internal static unsafe void TileMultiplyAdd(float* a, int lda, float* b, int ldb, float* c, int ldc, int rows, int n, int k)
    {
        int r = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; r + 4 <= rows; r += 4) Rows4(a + (long)r * lda, lda, b, ldb, c + (long)r * ldc, ldc, n, k);
        }
        for (; r < rows; r++) Rows1(a + (long)r * lda, b, ldb, c + (long)r * ldc, n, k);
    }

    private static unsafe void Rows4(float* a, int lda, float* b, int ldb, float* c, int ldc, int n, int k)
    {
        float* a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda;
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        int j = 0;
        for (; j + 16 <= n; j += 16)
        {
            var x0 = Vector256.Load(c + j); var y0 = Vector256.Load(c + j + 8);
            var x1 = Vector256.Load(c1 + j); var y1 = Vector256.Load(c1 + j + 8);
            var x2 = Vector256.Load(c2 + j); var y2 = Vector256.Load(c2 + j + 8);
            var x3 = Vector256.Load(c3 + j); var y3 = Vector256.Load(c3 + j + 8);
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += ldb)
            {
                var b0 = Vector256.Load(bp);
                var b1 = Vector256.Load(bp + 8);
                var s0 = Vector256.Create(a[p]);
                x0 = Vector256.FusedMultiplyAdd(s0, b0, x0); y0 = Vector256.FusedMultiplyAdd(s0, b1, y0);
                var s1 = Vector256.Create(a1[p]);
                x1 = Vector256.FusedMultiplyAdd(s1, b0, x1); y1 = Vector256.FusedMultiplyAdd(s1, b1, y1);
                var s2 = Vector256.Create(a2[p]);
                x2 = Vector256.FusedMultiplyAdd(s2, b0, x2); y2 = Vector256.FusedMultiplyAdd(s2, b1, y2);
                var s3 = Vector256.Create(a3[p]);
                x3 = Vector256.FusedMultiplyAdd(s3, b0, x3); y3 = Vector256.FusedMultiplyAdd(s3, b1, y3);
            }
            Vector256.Store(x0, c + j); Vector256.Store(y0, c + j + 8);
            Vector256.Store(x1, c1 + j); Vector256.Store(y1, c1 + j + 8);
            Vector256.Store(x2, c2 + j); Vector256.Store(y2, c2 + j + 8);
            Vector256.Store(x3, c3 + j); Vector256.Store(y3, c3 + j + 8);
        }
        for (; j + 8 <= n; j += 8)
        {
            var x0 = Vector256.Load(c + j);
            var x1 = Vector256.Load(c1 + j);
            var x2 = Vector256.Load(c2 + j);
            var x3 = Vector256.Load(c3 + j);
            float* bp = b + j;
            for (int p = 0; p < k; p++, bp += ldb)
            {
                var b0 = Vector256.Load(bp);
                x0 = Vector256.FusedMultiplyAdd(Vector256.Create(a[p]), b0, x0);
                x1 = Vector256.FusedMultiplyAdd(Vector256.Create(a1[p]), b0, x1);
                x2 = Vector256.FusedMultiplyAdd(Vector256.Create(a2[p]), b0, x2);
                x3 = Vector256.FusedMultiplyAdd(Vector256.Create(a3[p]), b0, x3);
            }
            Vector256.Store(x0, c + j);
            Vector256.Store(x1, c1 + j);
            Vector256.Store(x2, c2 + j);
            Vector256.Store(x3, c3 + j);
        }
        for (; j < n; j++)
        {
            float s0 = c[j], s1 = c1[j], s2 = c2[j], s3 = c3[j];
            for (int p = 0; p < k; p++)
            {
                float bv = b[(long)p * ldb + j];
                s0 += a[p] * bv; s1 += a1[p] * bv; s2 += a2[p] * bv; s3 += a3[p] * bv;
            }
            c[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
        }
    }

    private static unsafe void Rows1(float* a, float* b, int ldb, float* c, int n, int k)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 8 <= n; j += 8)
            {
                var x = Vector256.Load(c + j);
                float* bp = b + j;
                for (int p = 0; p < k; p++, bp += ldb) x = Vector256.FusedMultiplyAdd(Vector256.Create(a[p]), Vector256.Load(bp), x);
                Vector256.Store(x, c + j);
            }
        }
        for (; j < n; j++)
        {
            float s = c[j];
            for (int p = 0; p < k; p++) s += a[p] * b[(long)p * ldb + j];
            c[j] = s;
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
