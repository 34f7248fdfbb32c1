using System.Numerics.Tensors;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Models;

// The forward pass. Shapes: B batch rows, T positions, N = B·T token rows, d hidden, H/KV heads of dim D,
// W = (H + 2·KV)·D the fused QKV width, I the MLP width, V the vocabulary.
//
//   x (N, d)   = embed[ids] · scale (+ pos_embed[positions])
//   per layer:
//     h (R, d)   = norm1(x)                                  row tiles of R ≤ RowTile rows
//     qkv (R, W) = h · Wqkvᵀ (+ b), clamped for MPT
//     q (N, H·D) ← qkv columns per head, RoPE;  K/V cache (B, KV, slots, D) ← qkv columns per KV head, RoPE on K
//     att (N, H·D) = attention(q, K, V)                    fused, never (T, T)
//     x += att · Woᵀ (+ b)                                  GEMM accumulating straight into the residual
//     x += down(act(gate(h2)) · up(h2)),  h2 = norm2(x)     the [gate | up] buffer is reused in place
//   (parallel residual: h2 = norm2(x) is taken before the attention is added)
//   hf = final_norm(x) for the rows the sink wants, logits = hf · Wheadᵀ in chunks of rows → sink
//
// A training forward needs, per layer, x before each sub-block, the norm statistics (rstd / mean), qkv after RoPE,
// the attention log-sum-exp and the MLP pre-activations; this inference pass overwrites them to stay small.
public sealed unsafe partial class TransformerModel
{
    private int[]? _qCols, _kCols, _vCols;

    /// <summary>
    /// Runs the model over <paramref name="batch"/> and feeds the logits of the positions <paramref name="sink"/>
    /// wants to it (no output projection at all when <paramref name="sink"/> is null, e.g. to prefill a cache).
    /// With <paramref name="cache"/>, the tokens are appended after the cached ones and attend to them.
    /// </summary>
    /// <exception cref="ModelInputException">A real token id is outside the vocabulary, a position passes
    /// <c>max_position_embeddings</c> (unless allowed), or the cache is full.</exception>
    public void Forward(TokenBatch batch, LogitsSink? sink, KvCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_forwardLock) Run(batch, sink, cache);
    }

    private void Run(TokenBatch batch, LogitsSink? sink, KvCache? cache)
    {
        var s = Spec;
        int bsz = batch.BatchSize, t = batch.Length, n = bsz * t, d = s.HiddenSize;
        if (cache is not null && cache.BatchSize != bsz)
            throw new ArgumentException($"the KV cache holds {cache.BatchSize} rows, the batch has {bsz}", nameof(cache));
        int slot0 = cache?.Length ?? 0, cap = cache?.Capacity ?? t;
        if (slot0 + t > cap)
            throw new ModelInputException($"the KV cache holds {cap} tokens per row; {slot0} are used and {t} more do not fit", "create the cache with a larger capacity");

        // Positions and slot bookkeeping, validated before anything is written.
        var positions = new int[n];
        var next = new int[bsz];
        var realMask = new byte[n];
        bool padding = false;
        int minPos = int.MaxValue, maxPos = 0, maxRealPos = -1;
        for (int b = 0; b < bsz; b++)
        {
            int p = cache?.NextPosition[b] ?? 0;
            for (int i = 0; i < t; i++)
            {
                int k = b * t + i;
                bool real = batch.IsReal(b, i);
                int id = batch.Ids[k];
                if (real && (uint)id >= (uint)s.VocabSize)
                    throw new ModelInputException($"token id {id} at row {b}, position {i} is outside the vocabulary [0, {s.VocabSize})",
                        "the ids come from a different tokenizer, or the model's vocab_size is smaller than the tokenizer's");
                int pos = batch.Positions?[k] ?? p;
                if (real && batch.Positions is null) p++;
                if (real && batch.Positions is not null) p = Math.Max(p, pos + 1);
                if (pos < 0) throw new ModelInputException($"position {pos} at row {b}, position {i} is negative");
                positions[k] = pos;
                realMask[k] = (byte)(real ? 1 : 0);
                padding |= !real;
                minPos = Math.Min(minPos, pos);
                maxPos = Math.Max(maxPos, pos);
                if (real) maxRealPos = Math.Max(maxRealPos, pos);
            }
            next[b] = p;
        }
        if (maxRealPos >= s.MaxPositions && (s.Position == PositionKind.Learned || !Options.AllowLongerThanTrained))
            throw new ModelInputException($"position {maxRealPos} is past the model's maximum of {s.MaxPositions} positions (max_position_embeddings)",
                s.Position == PositionKind.Learned ? "this model has a learned position table and cannot go further; shorten the input"
                : "shorten the input, or allow longer contexts (RoPE/ALiBi extrapolate with degraded quality)");

        byte[] valid = cache?.Valid ?? new byte[n];
        int[] slotPositions = cache?.Positions ?? new int[n];
        for (int b = 0; b < bsz; b++)
        {
            for (int i = 0; i < t; i++)
            {
                valid[b * cap + slot0 + i] = realMask[b * t + i];
                slotPositions[b * cap + slot0 + i] = positions[b * t + i];
            }
            if (cache is not null) cache.NextPosition[b] = next[b];
        }
        bool keyPadding = padding || (cache?.HasPadding ?? false);
        _rope?.Prepare(minPos, maxPos);

        var ws = _workspace;
        int hd = s.NumHeads * s.HeadDim, w = s.QkvWidth;
        int rowTile = Math.Max(1, Math.Min(n, Options.RowTile));
        // Each buffer has its own name, so a later request never moves one that is in use.
        float* x = ws.Floats("x", (long)n * d);
        float* q = ws.Floats("q", (long)n * hd);
        float* att = ws.Floats("att", (long)n * hd);
        float* h = ws.Floats("h", (long)rowTile * d);
        float* h2 = s.Residual == ResidualKind.Parallel ? ws.Floats("h2", (long)rowTile * d) : null;
        float* qkv = ws.Floats("qkv", (long)rowTile * w);
        long kvLength = (long)bsz * s.NumKvHeads * cap * s.HeadDim;
        float* kTmp = cache is null ? ws.Floats("k", kvLength) : null;
        float* vTmp = cache is null ? ws.Floats("v", kvLength) : null;
        fixed (int* pIds = batch.Ids, pPos = positions)
        {
            Embed(pIds, pPos, realMask, n, x);
            Observe("embed", -1, x, n, d);
            var shape = new AttentionShape(bsz, t, s.NumHeads, s.NumKvHeads, s.HeadDim, slot0 + t, cap, slot0);
            for (int l = 0; l < s.NumLayers; l++)
            {
                var lw = Weights.Layers[l];
                float* kc = cache is not null ? cache.Keys(l) : kTmp;
                float* vc = cache is not null ? cache.Values(l) : vTmp;
                for (int r0 = 0; r0 < n; r0 += rowTile)
                {
                    int rows = Math.Min(rowTile, n - r0);
                    float* xr = x + (long)r0 * d;
                    Norm(lw.AttentionNorm, xr, h, rows);
                    if (h2 != null) Norm(lw.MlpNorm, xr, h2, rows);
                    lw.Qkv.Forward(h, rows, d, qkv, w, accumulate: false);
                    if (s.ClipQkv is { } clip)
                    {
                        var span = new Span<float>(qkv, rows * w);
                        TensorPrimitives.Clamp(span, -clip, clip, span);
                    }
                    Observe("qkv", l, qkv, rows, w, r0);
                    SplitHeads(qkv, r0, rows, t, slot0, cap, pPos, q, kc, vc);
                    if (h2 != null) Mlp(lw, h2, rows, xr);
                }
                Observe("q", l, q, n, hd);
                int window = s.SlidingWindow(l);
                if (window > 0 && Options.SlidingWindowConvention == SlidingWindowConvention.MistralReference) window++;
                var options = new AttentionOptions
                {
                    Scale = s.ScaleOf(l),
                    Causal = true,
                    SlidingWindow = window,
                    AlibiSlopes = _alibiSlopes,
                    KeyValid = keyPadding ? valid : default,
                    Positions = window > 0 || _alibiSlopes is not null ? slotPositions : default,
                };
                Attention.Forward(new ReadOnlySpan<float>(q, n * hd), new ReadOnlySpan<float>(kc, checked((int)kvLength)), new ReadOnlySpan<float>(vc, checked((int)kvLength)),
                    shape, options, new Span<float>(att, n * hd));
                Observe("attention", l, att, n, hd);
                for (int r0 = 0; r0 < n; r0 += rowTile)
                {
                    int rows = Math.Min(rowTile, n - r0);
                    float* xr = x + (long)r0 * d;
                    lw.Output.Forward(att + (long)r0 * hd, rows, hd, xr, d, accumulate: true);
                    if (h2 == null)
                    {
                        Norm(lw.MlpNorm, xr, h, rows);
                        Mlp(lw, h, rows, xr);
                    }
                }
                Observe("residual", l, x, n, d);
            }
        }
        if (cache is not null)
        {
            cache.Length = slot0 + t;
            cache.HasPadding = keyPadding;
        }
        if (sink is not null) Head(batch, sink, x);
    }

    private void Embed(int* ids, int* positions, byte[] real, int n, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize;
        var emb = Weights.Embedding;
        var pe = Weights.PositionEmbedding;
        float scale = s.EmbeddingScale;
        int maxPos = s.MaxPositions;
        ParallelRows.For(n, d, (start, end) =>
        {
            Span<float> tmp = pe is null ? default : stackalloc float[d];
            for (int i = start; i < end; i++)
            {
                var row = new Span<float>(x + (long)i * d, d);
                int id = real[i] != 0 || (uint)ids[i] < (uint)s.VocabSize ? ids[i] : 0; // padding may carry any id
                emb.ReadRow(id, row);
                if (scale != 1f) TensorPrimitives.Multiply(row, scale, row);
                if (pe is { } p)
                {
                    p.ReadRow(Math.Min(positions[i], maxPos - 1), tmp);
                    TensorPrimitives.Add(row, tmp, row);
                }
            }
        });
    }

    private void Norm(NormWeights w, float* src, float* dst, int rows)
    {
        var s = Spec;
        int d = s.HiddenSize;
        var x = new ReadOnlySpan<float>(src, rows * d);
        var y = new Span<float>(dst, rows * d);
        if (s.Norm == NormKind.RmsNorm) RmsNorm.Forward(x, w.Weight.Span, s.NormWeightOffset, s.NormEps, y);
        else LayerNorm.Forward(x, w.Weight.Span, w.Bias.Span, s.NormEps, y);
    }

    /// <summary>Copies the heads of qkv rows [r0, r0 + rows) to q (token-major) and to the K/V cache slots, rotating q and k.</summary>
    private void SplitHeads(float* qkv, int r0, int rows, int t, int slot0, int cap, int* positions, float* q, float* kc, float* vc)
    {
        var s = Spec;
        if (_qCols is null)
        {
            _qCols = Enumerable.Range(0, s.NumHeads).Select(hh => s.QkvColumns(hh, hh / (s.NumHeads / s.NumKvHeads)).Q).ToArray();
            _kCols = Enumerable.Range(0, s.NumKvHeads).Select(j => s.QkvColumns(0, j).K).ToArray();
            _vCols = Enumerable.Range(0, s.NumKvHeads).Select(j => s.QkvColumns(0, j).V).ToArray();
        }
        int[] qCols = _qCols, kCols = _kCols!, vCols = _vCols!;
        int dh = s.HeadDim, heads = s.NumHeads, kvh = s.NumKvHeads, w = s.QkvWidth, hd = heads * dh;
        var rope = _rope;
        int rot = s.Rope?.RotaryDim ?? 0;
        ParallelRows.For(rows, (long)w, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                int row = r0 + i, b = row / t, slot = slot0 + row % t, pos = positions[row];
                float* src = qkv + (long)i * w;
                float* qRow = q + (long)row * hd;
                for (int hh = 0; hh < heads; hh++) new ReadOnlySpan<float>(src + qCols[hh], dh).CopyTo(new Span<float>(qRow + hh * dh, dh));
                if (rope is not null) Rope.Apply(new Span<float>(qRow, hd), dh, rot, rope.Cos(pos), rope.Sin(pos));
                for (int j = 0; j < kvh; j++)
                {
                    long off = ((long)(b * kvh + j) * cap + slot) * dh;
                    var k = new Span<float>(kc + off, dh);
                    new ReadOnlySpan<float>(src + kCols[j], dh).CopyTo(k);
                    if (rope is not null) Rope.Apply(k, dh, rot, rope.Cos(pos), rope.Sin(pos));
                    new ReadOnlySpan<float>(src + vCols[j], dh).CopyTo(new Span<float>(vc + off, dh));
                }
            }
        });
    }

    /// <summary>x (rows, d) += MLP(hin).</summary>
    private void Mlp(LayerWeights lw, float* hin, int rows, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize, inter = s.IntermediateSize;
        float* buf = _workspace.Floats("mlp", (long)rows * (s.Mlp == MlpKind.Plain ? inter : 2 * inter));
        switch (s.Mlp)
        {
            case MlpKind.Gated:
                lw.Up!.Forward(hin, rows, d, buf, 2 * inter, accumulate: false);
                GatedRows(buf, rows, inter);
                lw.Down!.Forward(buf, rows, 2 * inter, x, d, accumulate: true);
                break;
            case MlpKind.Plain:
                lw.Up!.Forward(hin, rows, d, buf, inter, accumulate: false);
                var act = s.Activation;
                ParallelRows.For(rows, inter, (start, end) =>
                {
                    var span = new Span<float>(buf + (long)start * inter, (end - start) * inter);
                    Activations.Apply(span, span, act);
                });
                lw.Down!.Forward(buf, rows, inter, x, d, accumulate: true);
                break;
            case MlpKind.MixtureOfExperts:
                MixtureOfExperts(lw, hin, rows, x);
                break;
        }
    }

    /// <summary>Row r of buf is [gate | up] (width 2I); gate ← act(gate) · up in place.</summary>
    private void GatedRows(float* buf, int rows, int inter)
    {
        var act = Spec.Activation;
        ParallelRows.For(rows, inter, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var gate = new Span<float>(buf + (long)r * 2 * inter, inter);
                Activations.Gated(gate, new ReadOnlySpan<float>(buf + (long)r * 2 * inter + inter, inter), gate, act);
            }
        });
    }

    /// <summary>
    /// Mixtral's sparse MLP: per token, softmax over the router logits, keep the top-k, renormalise; each expert
    /// runs on the tokens routed to it (gathered into one GEMM) and its output, times the token's weight, is added.
    /// </summary>
    private void MixtureOfExperts(LayerWeights lw, float* hin, int rows, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize, inter = s.IntermediateSize, e = s.NumExperts, k = s.ExpertsPerToken;
        var ws = _workspace;
        float* logits = ws.Floats("router", (long)rows * e);
        int* chosen = ws.Ints("moe_chosen", (long)rows * k);
        float* weights = ws.Floats("moe_weights", (long)rows * k);
        lw.Router!.Forward(hin, rows, d, logits, e, accumulate: false);
        ParallelRows.For(rows, e * 4L, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var p = new Span<float>(logits + (long)r * e, e);
                Softmax.Forward(p, p);
                var vals = new Span<float>(weights + (long)r * k, k);
                TopK.Select(p, new Span<int>(chosen + (long)r * k, k), vals);
                TensorPrimitives.Divide(vals, TensorPrimitives.Sum(vals), vals);
            }
        });
        float* input = ws.Floats("moe_in", (long)rows * d);
        float* output = ws.Floats("moe_out", (long)rows * d);
        float* buf = ws.Floats("moe_mlp", (long)rows * 2 * inter);
        var tokens = new int[rows];
        var tokenWeights = new float[rows];
        for (int ex = 0; ex < e; ex++)
        {
            int count = 0;
            for (int r = 0; r < rows; r++)
            {
                for (int j = 0; j < k; j++)
                {
                    if (chosen[r * k + j] != ex) continue;
                    tokens[count] = r;
                    tokenWeights[count++] = weights[r * k + j];
                }
            }
            if (count == 0) continue;
            for (int i = 0; i < count; i++)
                new ReadOnlySpan<float>(hin + (long)tokens[i] * d, d).CopyTo(new Span<float>(input + (long)i * d, d));
            var expert = lw.Experts![ex];
            expert.GateUp.Forward(input, count, d, buf, 2 * inter, accumulate: false);
            GatedRows(buf, count, inter);
            expert.Down.Forward(buf, count, 2 * inter, output, d, accumulate: false);
            for (int i = 0; i < count; i++)
            {
                var dst = new Span<float>(x + (long)tokens[i] * d, d);
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(output + (long)i * d, d), tokenWeights[i], dst, dst);
            }
        }
    }

    /// <summary>Final norm and output projection for the rows the sink wants, in chunks; rows handed to the sink in parallel.</summary>
    private void Head(TokenBatch batch, LogitsSink sink, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize, v = s.VocabSize, t = batch.Length;
        sink.Begin(batch, v);
        var wanted = new List<int>();
        for (int b = 0; b < batch.BatchSize; b++)
            for (int i = 0; i < t; i++)
                if (sink.Wants(batch, b, i)) wanted.Add(b * t + i);
        if (wanted.Count == 0) return;
        int count = wanted.Count;
        float* hf = _workspace.Floats("final", (long)count * d);
        for (int i = 0; i < count; i++) new ReadOnlySpan<float>(x + (long)wanted[i] * d, d).CopyTo(new Span<float>(hf + (long)i * d, d));
        Norm(Weights.FinalNorm, hf, hf, count);
        Observe("final_norm", -1, hf, count, d);
        int chunk = (int)Math.Clamp((64L << 20) / (4L * v), 1, count);
        float* logits = _workspace.Floats("logits", (long)chunk * v);
        var rows = wanted.ToArray();
        for (int c0 = 0; c0 < count; c0 += chunk)
        {
            int m = Math.Min(chunk, count - c0);
            Weights.LmHead.Forward(hf + (long)c0 * d, m, d, logits, v, accumulate: false);
            int first = c0;
            ParallelRows.For(m, v, (start, end) =>
            {
                for (int i = start; i < end; i++)
                {
                    int row = rows[first + i];
                    sink.ConsumeRow(row / t, row % t, new ReadOnlySpan<float>(logits + (long)i * v, v));
                }
            });
        }
    }

    private void Observe(string name, int layer, float* values, int rows, int columns, int rowOffset = 0) =>
        Observer?.Observe(name, layer, rowOffset, new ReadOnlySpan<float>(values, checked(rows * columns)), columns);
}
