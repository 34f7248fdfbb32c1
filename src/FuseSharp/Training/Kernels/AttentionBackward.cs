using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>Sizes and masking of one causal self-attention call in training (no KV cache: queries and keys are the same T positions).</summary>
/// <param name="Batch">B.</param>
/// <param name="Length">T.</param>
/// <param name="Heads">Query heads H.</param>
/// <param name="KvHeads">Key/value heads (grouped-query attention: query head h reads KV head h / (H / KV)).</param>
/// <param name="HeadDim">D.</param>
/// <param name="Scale">Multiplies q·k (usually D^−½).</param>
/// <param name="SlidingWindow">When positive, the query at t sees keys t − W + 1 .. t only (Mistral).</param>
public readonly record struct CausalAttentionShape(int Batch, int Length, int Heads, int KvHeads, int HeadDim, float Scale, int SlidingWindow = 0)
{
    public int Group => Heads / KvHeads;

    /// <summary>First key the query at <paramref name="t"/> sees.</summary>
    public int FirstKey(int t) => SlidingWindow > 0 ? Math.Max(0, t - SlidingWindow + 1) : 0;
}

/// <summary>
/// Backward of causal scaled dot-product attention, FlashAttention-2 style (Dao 2023,
/// https://arxiv.org/abs/2307.08691): the forward saves only the output O and the log-sum-exp of each score row,
/// and the backward recomputes the probabilities block by block, so no <c>(T, T)</c> matrix is kept between the passes.
/// Layouts are the engine's: queries, outputs and their gradients token-major <c>(B, T, H, D)</c>; keys, values and
/// their gradients head-major <c>(B, KV, T, D)</c>; log-sum-exp <c>(B, H, T)</c>. Scores are
/// <c>S = scale·q·k + slope_h·(j − t)</c> (the ALiBi term only with slopes), masked to the visible keys.
/// With <c>P = exp(S − lse)</c> and <c>Δ_t = Σ_d dO·O</c>:
/// <code>
/// dV = Pᵀ·dO,   dS = P ∘ (dO·Vᵀ − Δ),   dQ = scale·dS·K,   dK = scale·dSᵀ·Q
/// </code>
/// One task owns a (batch, KV head) pair and walks the heads of its group and the query blocks in order, so every
/// key/value gradient is summed in the same order on any number of threads. The block products go through
/// <see cref="Gemm"/>.
/// </summary>
public static class AttentionBackward
{
    private const int QueryBlock = 64;

    /// <param name="q">Queries <c>(B, T, H, D)</c> (after RoPE, if any).</param>
    /// <param name="k">Keys <c>(B, KV, T, D)</c>.</param>
    /// <param name="v">Values <c>(B, KV, T, D)</c>.</param>
    /// <param name="output">Forward output O <c>(B, T, H, D)</c>.</param>
    /// <param name="logSumExp">Forward log-sum-exp of each score row <c>(B, H, T)</c>.</param>
    /// <param name="outputGradient">dL/dO <c>(B, T, H, D)</c>.</param>
    /// <param name="shape">Sizes and masking.</param>
    /// <param name="alibiSlopes">ALiBi slope per head <c>(H)</c>, or empty.</param>
    /// <param name="queryGradient">dL/dq <c>(B, T, H, D)</c>, overwritten.</param>
    /// <param name="keyGradient">dL/dk <c>(B, KV, T, D)</c>, overwritten.</param>
    /// <param name="valueGradient">dL/dv <c>(B, KV, T, D)</c>, overwritten.</param>
    public static unsafe void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp,
        ReadOnlySpan<float> outputGradient, CausalAttentionShape shape, ReadOnlySpan<float> alibiSlopes,
        Span<float> queryGradient, Span<float> keyGradient, Span<float> valueGradient)
    {
        Validate(q, k, v, output, logSumExp, outputGradient, shape, alibiSlopes, queryGradient, keyGradient, valueGradient);
        int tasks = shape.Batch * shape.KvHeads;
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = outputGradient, pa = alibiSlopes, pdq = queryGradient, pdk = keyGradient, pdv = valueGradient)
        {
            var p = new Pointers(pq, pk, pv, po, pl, pdo, alibiSlopes.IsEmpty ? null : pa, pdq, pdk, pdv, q.Length);
            ParallelRows.For(tasks, (long)shape.Group * shape.Length * shape.Length * shape.HeadDim, (start, end) =>
            {
                var s = new float[QueryBlock * shape.Length];
                var dp = new float[QueryBlock * shape.Length];
                var delta = new float[QueryBlock];
                for (int task = start; task < end; task++) RunTask(p, shape, task / shape.KvHeads, task % shape.KvHeads, s, dp, delta);
            });
        }
    }

    /// <summary>The pinned buffers of one call (pointers: the worker lambdas cannot capture spans).</summary>
    private readonly unsafe struct Pointers(float* q, float* k, float* v, float* o, float* lse, float* dO, float* alibi, float* dq, float* dk, float* dv, long qLength)
    {
        public readonly float* Q = q, K = k, V = v, O = o, Lse = lse, DO = dO, Alibi = alibi, DQ = dq, DK = dk, DV = dv;
        public readonly long QLength = qLength;
    }

    private static unsafe void RunTask(Pointers p, CausalAttentionShape sh, int b, int kvh, float[] sBuf, float[] dpBuf, float[] delta)
    {
        int t = sh.Length, d = sh.HeadDim, h = sh.Heads, rowQ = h * d;
        long kvBase = ((long)b * sh.KvHeads + kvh) * t * d;
        new Span<float>(p.DK + kvBase, t * d).Clear();
        new Span<float>(p.DV + kvBase, t * d).Clear();
        var kSpan = new ReadOnlySpan<float>(p.K + kvBase, t * d);
        var vSpan = new ReadOnlySpan<float>(p.V + kvBase, t * d);
        for (int hh = kvh * sh.Group; hh < (kvh + 1) * sh.Group; hh++)
        {
            float slope = p.Alibi == null ? 0f : p.Alibi[hh];
            float* lse = p.Lse + ((long)b * h + hh) * t;
            for (int i0 = 0; i0 < t; i0 += QueryBlock)
            {
                int bq = Math.Min(QueryBlock, t - i0);
                int j0 = sh.FirstKey(i0), j1 = i0 + bq, n = j1 - j0;
                long qOff = ((long)b * t + i0) * rowQ + (long)hh * d;
                var qBlk = new ReadOnlySpan<float>(p.Q + qOff, (int)Math.Min(p.QLength - qOff, int.MaxValue));
                var doBlk = new ReadOnlySpan<float>(p.DO + qOff, (int)Math.Min(p.QLength - qOff, int.MaxValue));
                var kBlk = kSpan[(j0 * d)..];
                var vBlk = vSpan[(j0 * d)..];
                var s = sBuf.AsSpan(0, bq * n);
                var dp = dpBuf.AsSpan(0, bq * n);
                // S = Q_blk · K[j0:j1]ᵀ and dP = dO_blk · V[j0:j1]ᵀ, (bq, n).
                Gemm.MatMul(false, true, bq, n, d, qBlk, rowQ, kBlk, d, s, n);
                Gemm.MatMul(false, true, bq, n, d, doBlk, rowQ, vBlk, d, dp, n);
                for (int i = 0; i < bq; i++)
                {
                    float* o = p.O + qOff + (long)i * rowQ, dO = p.DO + qOff + (long)i * rowQ;
                    double dl = 0;
                    for (int c = 0; c < d; c++) dl += (double)dO[c] * o[c];
                    delta[i] = (float)dl;
                }
                for (int i = 0; i < bq; i++)
                {
                    int tq = i0 + i, first = sh.FirstKey(tq);
                    float l = lse[tq];
                    var sr = s.Slice(i * n, n);
                    var dpr = dp.Slice(i * n, n);
                    for (int jj = 0; jj < n; jj++)
                    {
                        int j = j0 + jj;
                        if (j < first || j > tq || float.IsNegativeInfinity(l))
                        {
                            sr[jj] = 0;
                            dpr[jj] = 0;
                            continue;
                        }
                        float prob = MathF.Exp(sh.Scale * sr[jj] + slope * (j - tq) - l);
                        sr[jj] = prob;                                  // s now holds P
                        dpr[jj] = sh.Scale * prob * (dpr[jj] - delta[i]); // dp now holds scale·dS
                    }
                }
                // dQ_blk = (scale·dS)·K[j0:j1]   (bq, D), written into the token-major rows.
                var dq = new Span<float>(p.DQ + qOff, (int)Math.Min(p.QLength - qOff, int.MaxValue));
                Gemm.MatMul(false, false, bq, d, n, dp, n, kBlk, d, dq, rowQ);
                // dK[j0:j1] += (scale·dS)ᵀ·Q_blk, dV[j0:j1] += Pᵀ·dO_blk   (n, D).
                var dk = new Span<float>(p.DK + kvBase + (long)j0 * d, n * d);
                var dv = new Span<float>(p.DV + kvBase + (long)j0 * d, n * d);
                Gemm.MatMul(true, false, n, d, bq, dp, n, qBlk, rowQ, dk, d, accumulate: true);
                Gemm.MatMul(true, false, n, d, bq, s, n, doBlk, rowQ, dv, d, accumulate: true);
            }
        }
    }

    /// <summary>
    /// The float64 scalar reference: the full score rows, softmax and the four products, per (b, h, t). Same
    /// arguments as <see cref="Backward"/>; recomputes the log-sum-exp itself (so it also checks the saved one).
    /// </summary>
    public static void BackwardReference(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> outputGradient,
        CausalAttentionShape shape, ReadOnlySpan<float> alibiSlopes, Span<float> queryGradient, Span<float> keyGradient, Span<float> valueGradient)
    {
        int bsz = shape.Batch, t = shape.Length, h = shape.Heads, kv = shape.KvHeads, d = shape.HeadDim, g = shape.Group;
        var dk = new double[keyGradient.Length];
        var dv = new double[valueGradient.Length];
        var prob = new double[t];
        var dpr = new double[t];
        for (int b = 0; b < bsz; b++)
        for (int hh = 0; hh < h; hh++)
        {
            int kvh = hh / g;
            double slope = alibiSlopes.IsEmpty ? 0 : alibiSlopes[hh];
            for (int tq = 0; tq < t; tq++)
            {
                int first = shape.FirstKey(tq);
                long qo = (((long)b * t + tq) * h + hh) * d;
                double max = double.NegativeInfinity;
                for (int j = first; j <= tq; j++)
                {
                    long ko = (((long)b * kv + kvh) * t + j) * d;
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += (double)q[(int)(qo + c)] * k[(int)(ko + c)];
                    prob[j] = shape.Scale * dot + slope * (j - tq);
                    max = Math.Max(max, prob[j]);
                }
                double sum = 0;
                for (int j = first; j <= tq; j++) sum += Math.Exp(prob[j] - max);
                for (int j = first; j <= tq; j++) prob[j] = Math.Exp(prob[j] - max) / sum;
                // O_t = Σ P v; Δ = dO·O; dP_j = dO·v_j.
                double delta = 0;
                for (int c = 0; c < d; c++)
                {
                    double o = 0;
                    for (int j = first; j <= tq; j++) o += prob[j] * v[(int)((((long)b * kv + kvh) * t + j) * d + c)];
                    delta += o * outputGradient[(int)(qo + c)];
                }
                for (int c = 0; c < d; c++) queryGradient[(int)(qo + c)] = 0;
                for (int j = first; j <= tq; j++)
                {
                    long ko = (((long)b * kv + kvh) * t + j) * d;
                    double dp = 0;
                    for (int c = 0; c < d; c++) dp += (double)outputGradient[(int)(qo + c)] * v[(int)(ko + c)];
                    dpr[j] = prob[j] * (dp - delta);
                    for (int c = 0; c < d; c++)
                    {
                        queryGradient[(int)(qo + c)] += (float)(shape.Scale * dpr[j] * k[(int)(ko + c)]);
                        dk[ko + c] += shape.Scale * dpr[j] * q[(int)(qo + c)];
                        dv[ko + c] += prob[j] * outputGradient[(int)(qo + c)];
                    }
                }
            }
        }
        for (int i = 0; i < dk.Length; i++) keyGradient[i] = (float)dk[i];
        for (int i = 0; i < dv.Length; i++) valueGradient[i] = (float)dv[i];
    }

    private static void Validate(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> output, ReadOnlySpan<float> logSumExp,
        ReadOnlySpan<float> outputGradient, CausalAttentionShape s, ReadOnlySpan<float> alibiSlopes, Span<float> dq, Span<float> dk, Span<float> dv)
    {
        if (s.Batch <= 0 || s.Length <= 0 || s.Heads <= 0 || s.KvHeads <= 0 || s.HeadDim <= 0 || s.Heads % s.KvHeads != 0)
            throw new ArgumentException($"invalid attention shape {s}", nameof(s));
        long nq = (long)s.Batch * s.Length * s.Heads * s.HeadDim, nk = (long)s.Batch * s.KvHeads * s.Length * s.HeadDim;
        if (q.Length != nq || output.Length != nq || outputGradient.Length != nq || dq.Length != nq)
            throw new ArgumentException($"queries, output and their gradients need {nq} values (B, T, H, D)", nameof(q));
        if (k.Length != nk || v.Length != nk || dk.Length != nk || dv.Length != nk)
            throw new ArgumentException($"keys, values and their gradients need {nk} values (B, KV, T, D)", nameof(k));
        if (logSumExp.Length != (long)s.Batch * s.Heads * s.Length) throw new ArgumentException("logSumExp needs (B, H, T) values", nameof(logSumExp));
        if (!alibiSlopes.IsEmpty && alibiSlopes.Length != s.Heads) throw new ArgumentException($"alibiSlopes needs {s.Heads} values", nameof(alibiSlopes));
    }
}
