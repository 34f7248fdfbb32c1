using System.Numerics.Tensors;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors.Kernels;
using FuseSharp.Training.Data;
using FuseSharp.Training.Kernels;

namespace FuseSharp.Training;

// The training passes. Shapes: B rows of T positions, N = B·T token rows, d hidden, H/KV heads of dim D,
// W = (H + 2·KV)·D the fused QKV width, I the MLP width (Iw = 2I for gated MLPs, the [gate | up] columns), V vocabulary.
//
// Forward, as the engine's inference pass (same kernels, same order of additions, so the logits are the engine's):
//   x_0 (N, d) = embed[ids]·scale (+ pos_embed[t])
//   block l:  h1 = norm1(x_l)                      saves rstd1 (+ mean1)
//             qkv = h1·Wqkvᵀ (+ b) (clamped, MPT)  saves the unclamped qkv when clipping
//             q (N, H·D), k, v (B, KV, T, D) ← qkv columns, RoPE on q and k
//             att (N, H·D) = attention(q, k, v)     saves the log-sum-exp (B, H, T)
//             sequential: x2 = x_l + att·Woᵀ; h2 = norm2(x2); x_{l+1} = x2 + down(act(h2))
//             parallel:   h2 = norm2(x_l);        x_{l+1} = x_l + down(act(h2)) + att·Woᵀ
//             act(h2) = act(gate)·up from pre = h2·[Wgate | Wup]ᵀ (gated), act(pre = h2·Wupᵀ) (plain)
//   hf = final_norm(x_L), logits = hf·Wheadᵀ in chunks of rows → the loss, which turns them into dL/dlogits
// Backward walks the same steps in reverse with dx (N, d) = dL/dx_l carried down the residual stream.
// Saved per block: x_l, h1, rstd/mean ×2, q, k, v, att, lse, x2, h2, pre, act (and qkv before the clamp for MPT);
// with gradient checkpointing only x_l, and the rest is recomputed into one shared set right before the block's backward.
public sealed unsafe partial class TrainableTransformer
{
    private delegate void LogitsHandler(int firstPosition, int count, Span<float> logits);

    /// <summary>Pointers to one block's saved activations.</summary>
    private struct Saved
    {
        public float* H1, R1, M1, QkvPre, Qkv, Q, K, V, Att, Lse, X2, H2, R2, M2, Pre, Act;
    }

    private int MlpWidth => Spec.Mlp == MlpKind.Gated ? 2 * Spec.IntermediateSize : Spec.IntermediateSize;

    private Saved SavedFor(int layer, int n, int bsz, int t)
    {
        var s = Spec;
        string k = Options.GradientCheckpointing ? "c" : layer.ToString(System.Globalization.CultureInfo.InvariantCulture);
        long d = s.HiddenSize, hd = (long)s.NumHeads * s.HeadDim, kv = (long)bsz * s.NumKvHeads * t * s.HeadDim;
        bool ln = s.Norm == NormKind.LayerNorm;
        return new Saved
        {
            H1 = _ws.Floats("h1." + k, n * d),
            R1 = _ws.Floats("r1." + k, n),
            M1 = ln ? _ws.Floats("m1." + k, n) : null,
            QkvPre = s.ClipQkv is null ? null : _ws.Floats("qkvpre." + k, (long)n * s.QkvWidth),
            Qkv = _ws.Floats("qkv." + k, (long)n * s.QkvWidth),
            Q = _ws.Floats("q." + k, n * hd),
            K = _ws.Floats("k." + k, kv),
            V = _ws.Floats("v." + k, kv),
            Att = _ws.Floats("att." + k, n * hd),
            Lse = _ws.Floats("lse." + k, (long)bsz * s.NumHeads * t),
            X2 = s.Residual == ResidualKind.Sequential ? _ws.Floats("x2." + k, n * d) : null,
            H2 = _ws.Floats("h2." + k, n * d),
            R2 = _ws.Floats("r2." + k, n),
            M2 = ln ? _ws.Floats("m2." + k, n) : null,
            Pre = _ws.Floats("pre." + k, (long)n * MlpWidth),
            Act = _ws.Floats("act." + k, (long)n * s.IntermediateSize),
        };
    }

    private void Forward(MicroBatch batch, LogitsHandler onLogits, bool backward)
    {
        var s = Spec;
        int bsz = batch.BatchSize, t = batch.SequenceLength, n = batch.PositionCount, d = s.HiddenSize, v = s.VocabSize;
        if (t > s.MaxPositions)
            throw new TrainingException($"a micro-batch of {t} positions is longer than the model's {s.MaxPositions} positions (max_position_embeddings)",
                $"lower --block-size to at most {s.MaxPositions}");
        for (int i = 0; i < n; i++)
            if ((uint)batch.InputIds[i] >= (uint)v)
                throw new TrainingException($"token id {batch.InputIds[i]} at row {i / t}, position {i % t} is outside the model's vocabulary of {v}",
                    "the data was tokenized with another tokenizer, or the pad id is too large");
        _rope?.Prepare(0, t - 1);

        // Block inputs x_0 .. x_L: all kept for a backward, two alternating buffers otherwise.
        var xs = new float*[s.NumLayers + 1];
        for (int l = 0; l <= s.NumLayers; l++)
            xs[l] = _ws.Floats(backward ? "x." + l.ToString(System.Globalization.CultureInfo.InvariantCulture) : l % 2 == 0 ? "x.even" : "x.odd", (long)n * d);
        var saved = new Saved[s.NumLayers];
        for (int l = 0; l < s.NumLayers; l++) saved[l] = SavedFor(backward ? l : 0, n, bsz, t);

        fixed (int* ids = batch.InputIds)
        {
            Embed(ids, n, t, xs[0]);
            for (int l = 0; l < s.NumLayers; l++) ForwardBlock(l, saved[l], xs[l], xs[l + 1], bsz, t);

            // Head: final norm, then logits in chunks of rows handed to the loss; dhf collects dL/dhf.
            float* hf = _ws.Floats("hf", (long)n * d);
            float* rf = _ws.Floats("rf", n);
            float* mf = s.Norm == NormKind.LayerNorm ? _ws.Floats("mf", n) : null;
            float* dhf = backward ? _ws.Floats("dhf", (long)n * d) : null;
            NormForward(_finalNorm, xs[s.NumLayers], hf, rf, mf, n);
            var head = _engine.Weights.LmHead;
            int chunk = (int)Math.Clamp((64L << 20) / (4L * v), 1, n);
            float* logits = _ws.Floats("logits", (long)chunk * v);
            for (int c0 = 0; c0 < n; c0 += chunk)
            {
                int m = Math.Min(chunk, n - c0);
                head.Forward(hf + (long)c0 * d, m, d, logits, v, accumulate: false);
                onLogits(c0, m, new Span<float>(logits, m * v));
                if (backward) LinearBackward(head, hf + (long)c0 * d, m, logits, v, dhf + (long)c0 * d, accumulateInput: false);
            }
            if (!backward) return;

            float* dx = _ws.Floats("dx", (long)n * d);
            NormBackward(_finalNorm, xs[s.NumLayers], rf, mf, dhf, dx, n, accumulate: false);
            for (int l = s.NumLayers - 1; l >= 0; l--)
            {
                if (Options.GradientCheckpointing) ForwardBlock(l, saved[l], xs[l], xs[l + 1], bsz, t);
                BackwardBlock(l, saved[l], xs[l], dx, bsz, t);
            }
            EmbedBackward(ids, n, t, dx);
        }
    }

    private void Embed(int* ids, int n, int t, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize;
        float* emb = Param(_embedding);
        float* pos = _positionEmbedding >= 0 ? Param(_positionEmbedding) : null;
        float scale = s.EmbeddingScale;
        ParallelRows.For(n, d, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var row = new Span<float>(x + (long)i * d, d);
                new ReadOnlySpan<float>(emb + (long)ids[i] * d, d).CopyTo(row);
                if (scale != 1f) TensorPrimitives.Multiply(row, scale, row);
                if (pos != null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(pos + (long)(i % t) * d, d), row);
            }
        });
    }

    private void EmbedBackward(int* ids, int n, int t, float* dx)
    {
        var s = Spec;
        int d = s.HiddenSize;
        var dxs = new ReadOnlySpan<float>(dx, n * d);
        var idSpan = new ReadOnlySpan<int>(ids, n);
        if (_positionEmbedding >= 0)
        {
            var positions = new int[n];
            for (int i = 0; i < n; i++) positions[i] = i % t;
            EmbeddingBackward.Backward(positions, dxs, GradSpan(_positionEmbedding), d);
        }
        if (s.EmbeddingScale != 1f)
        {
            var scaled = new Span<float>(_ws.Floats("dh1", (long)n * d), n * d);
            TensorPrimitives.Multiply(dxs, s.EmbeddingScale, scaled);
            dxs = scaled;
        }
        EmbeddingBackward.Backward(idSpan, dxs, GradSpan(_embedding), d, s.EmbeddingPaddingIndex ?? -1);
    }

    private void ForwardBlock(int l, Saved a, float* xin, float* xout, int bsz, int t)
    {
        var s = Spec;
        var lw = _engine.Weights.Layers[l];
        int n = bsz * t, d = s.HiddenSize, w = s.QkvWidth, hd = s.NumHeads * s.HeadDim;
        long nd = (long)n * d;
        NormForward(_norm1[l], xin, a.H1, a.R1, a.M1, n);
        if (s.Residual == ResidualKind.Parallel) NormForward(_norm2[l], xin, a.H2, a.R2, a.M2, n);
        lw.Qkv.Forward(a.H1, n, d, a.Qkv, w, accumulate: false);
        if (s.ClipQkv is { } clip)
        {
            var qkv = new Span<float>(a.Qkv, n * w);
            qkv.CopyTo(new Span<float>(a.QkvPre, n * w));
            TensorPrimitives.Clamp(qkv, -clip, clip, qkv);
        }
        SplitHeads(a.Qkv, a.Q, a.K, a.V, bsz, t);
        long kvLength = (long)bsz * s.NumKvHeads * t * s.HeadDim;
        var options = new AttentionOptions { Scale = s.ScaleOf(l), Causal = true, SlidingWindow = Window(l), AlibiSlopes = _alibi };
        Attention.Forward(new ReadOnlySpan<float>(a.Q, n * hd), new ReadOnlySpan<float>(a.K, checked((int)kvLength)), new ReadOnlySpan<float>(a.V, (int)kvLength),
            new AttentionShape(bsz, t, s.NumHeads, s.NumKvHeads, s.HeadDim, t, t, 0), options, new Span<float>(a.Att, n * hd), new Span<float>(a.Lse, bsz * s.NumHeads * t));
        var xo = new Span<float>(xout, checked((int)nd));
        new ReadOnlySpan<float>(xin, (int)nd).CopyTo(xo);
        if (s.Residual == ResidualKind.Sequential)
        {
            lw.Output.Forward(a.Att, n, hd, xout, d, accumulate: true);
            xo.CopyTo(new Span<float>(a.X2, (int)nd));
            NormForward(_norm2[l], a.X2, a.H2, a.R2, a.M2, n);
            MlpForward(lw, a, n, xout);
        }
        else
        {
            // The engine adds the MLP before the attention output in a parallel block; same order here.
            MlpForward(lw, a, n, xout);
            lw.Output.Forward(a.Att, n, hd, xout, d, accumulate: true);
        }
    }

    /// <summary>x (n, d) += down(act(h2)), keeping the pre-activations and the activation output.</summary>
    private void MlpForward(LayerWeights lw, Saved a, int n, float* x)
    {
        var s = Spec;
        int d = s.HiddenSize, inter = s.IntermediateSize, width = MlpWidth;
        var act = s.Activation;
        lw.Up!.Forward(a.H2, n, d, a.Pre, width, accumulate: false);
        float* pre = a.Pre, output = a.Act;
        ParallelRows.For(n, inter, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var dst = new Span<float>(output + (long)r * inter, inter);
                if (s.Mlp == MlpKind.Gated)
                    Activations.Gated(new ReadOnlySpan<float>(pre + (long)r * width, inter), new ReadOnlySpan<float>(pre + (long)r * width + inter, inter), dst, act);
                else
                    Activations.Apply(new ReadOnlySpan<float>(pre + (long)r * width, inter), dst, act);
            }
        });
        lw.Down!.Forward(a.Act, n, inter, x, d, accumulate: true);
    }

    private void BackwardBlock(int l, Saved a, float* xin, float* dx, int bsz, int t)
    {
        var s = Spec;
        var lw = _engine.Weights.Layers[l];
        int n = bsz * t, d = s.HiddenSize, w = s.QkvWidth, hd = s.NumHeads * s.HeadDim, inter = s.IntermediateSize, width = MlpWidth;
        long kvLength = (long)bsz * s.NumKvHeads * t * s.HeadDim;
        float* dAct = _ws.Floats("dact", (long)n * inter);
        float* dPre = _ws.Floats("dpre", (long)n * width);
        float* dh1 = _ws.Floats("dh1", (long)n * d);
        float* dh2 = _ws.Floats("dh2", (long)n * d);
        float* dAtt = _ws.Floats("datt", (long)n * hd);
        float* dq = _ws.Floats("dq", (long)n * hd);
        float* dk = _ws.Floats("dk", kvLength);
        float* dv = _ws.Floats("dv", kvLength);
        float* dQkv = _ws.Floats("dqkv", (long)n * w);

        // MLP: dx is dL/d(block output); the MLP's input gradient goes to dh2.
        LinearBackward(lw.Down!, a.Act, n, dx, d, dAct, accumulateInput: false);
        var kind = s.Activation;
        bool gated = s.Mlp == MlpKind.Gated;
        float* pre = a.Pre;
        ParallelRows.For(n, 8L * inter, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                float* pr = pre + (long)r * width, dpr = dPre + (long)r * width;
                var dy = new ReadOnlySpan<float>(dAct + (long)r * inter, inter);
                if (gated)
                    ActivationBackward.GatedBackward(new ReadOnlySpan<float>(pr, inter), new ReadOnlySpan<float>(pr + inter, inter), dy,
                        new Span<float>(dpr, inter), new Span<float>(dpr + inter, inter), kind);
                else
                    ActivationBackward.Backward(new ReadOnlySpan<float>(pr, inter), dy, new Span<float>(dpr, inter), kind);
            }
        });
        LinearBackward(lw.Up!, a.H2, n, dPre, width, dh2, accumulateInput: false);
        bool sequential = s.Residual == ResidualKind.Sequential;
        if (sequential) NormBackward(_norm2[l], a.X2, a.R2, a.M2, dh2, dx, n, accumulate: true); // dx is now dL/dx2

        // Attention: output projection, then the attention itself, RoPE, the QKV columns, the clamp, the projection.
        LinearBackward(lw.Output, a.Att, n, dx, d, dAtt, accumulateInput: false);
        int window = Window(l);
        AttentionBackward.Backward(new ReadOnlySpan<float>(a.Q, n * hd), new ReadOnlySpan<float>(a.K, (int)kvLength), new ReadOnlySpan<float>(a.V, (int)kvLength),
            new ReadOnlySpan<float>(a.Att, n * hd), new ReadOnlySpan<float>(a.Lse, bsz * s.NumHeads * t), new ReadOnlySpan<float>(dAtt, n * hd),
            new CausalAttentionShape(bsz, t, s.NumHeads, s.NumKvHeads, s.HeadDim, s.ScaleOf(l), window), _alibi,
            new Span<float>(dq, n * hd), new Span<float>(dk, (int)kvLength), new Span<float>(dv, (int)kvLength));
        MergeHeads(dq, dk, dv, dQkv, bsz, t);
        if (s.ClipQkv is { } clip)
        {
            var g = new Span<float>(dQkv, n * w);
            ActivationBackward.ClampBackward(new ReadOnlySpan<float>(a.QkvPre, n * w), clip, g, g);
        }
        LinearBackward(lw.Qkv, a.H1, n, dQkv, w, dh1, accumulateInput: false);
        if (!sequential) NormBackward(_norm2[l], xin, a.R2, a.M2, dh2, dx, n, accumulate: true);
        NormBackward(_norm1[l], xin, a.R1, a.M1, dh1, dx, n, accumulate: true);
    }

    /// <summary>The window of layer l in the configured convention (0: full attention).</summary>
    private int Window(int l)
    {
        int window = Spec.SlidingWindow(l);
        return window > 0 && Options.SlidingWindowConvention == SlidingWindowConvention.MistralReference ? window + 1 : window;
    }

    /// <summary>qkv (N, W) → q (N, H·D) and k, v (B, KV, T, D), RoPE applied to q and k (positions 0..T−1 in every row).</summary>
    private void SplitHeads(float* qkv, float* q, float* k, float* v, int bsz, int t) => MoveHeads(qkv, q, k, v, bsz, t, backward: false);

    /// <summary>The inverse of <see cref="SplitHeads"/> on gradients: RoPE backward on dq and dk, then each head back into its qkv columns.</summary>
    private void MergeHeads(float* dq, float* dk, float* dv, float* dqkv, int bsz, int t) => MoveHeads(dqkv, dq, dk, dv, bsz, t, backward: true);

    /// <summary>Copies every head between its qkv columns and q / k / v, rotating after the copy (forward) or before it (backward).</summary>
    private void MoveHeads(float* qkv, float* q, float* k, float* v, int bsz, int t, bool backward)
    {
        var s = Spec;
        int dh = s.HeadDim, heads = s.NumHeads, kvh = s.NumKvHeads, w = s.QkvWidth, hd = heads * dh, rot = s.Rope?.RotaryDim ?? 0;
        int[] qCols = _qCols, kCols = _kCols, vCols = _vCols;
        var rope = _rope;
        void Move(float* fused, float* head, bool rotate, int pos)
        {
            var h = new Span<float>(head, dh);
            var f = new Span<float>(fused, dh);
            if (backward)
            {
                if (rotate) RopeBackward.Apply(h, dh, rot, rope!.Cos(pos), rope.Sin(pos));
                h.CopyTo(f);
            }
            else
            {
                f.CopyTo(h);
                if (rotate) Rope.Apply(h, dh, rot, rope!.Cos(pos), rope.Sin(pos));
            }
        }
        ParallelRows.For(bsz * t, w, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                int b = row / t, pos = row % t;
                float* fused = qkv + (long)row * w;
                for (int h = 0; h < heads; h++) Move(fused + qCols[h], q + (long)row * hd + h * dh, rope is not null, pos);
                for (int j = 0; j < kvh; j++)
                {
                    long off = ((long)(b * kvh + j) * t + pos) * dh;
                    Move(fused + kCols[j], k + off, rope is not null, pos);
                    Move(fused + vCols[j], v + off, false, pos);
                }
            }
        });
    }

    private void NormForward(NormParams p, float* x, float* y, float* rstd, float* mean, int rows)
    {
        var s = Spec;
        int d = s.HiddenSize;
        var xs = new ReadOnlySpan<float>(x, rows * d);
        var ys = new Span<float>(y, rows * d);
        if (s.Norm == NormKind.RmsNorm) RmsNorm.Forward(xs, ParamSpan(p.Weight), s.NormWeightOffset, s.NormEps, ys, new Span<float>(rstd, rows));
        else LayerNorm.Forward(xs, ParamSpan(p.Weight), ParamSpan(p.Bias), s.NormEps, ys, new Span<float>(mean, rows), new Span<float>(rstd, rows));
    }

    private void NormBackward(NormParams p, float* x, float* rstd, float* mean, float* dy, float* dx, int rows, bool accumulate)
    {
        var s = Spec;
        int d = s.HiddenSize;
        var xs = new ReadOnlySpan<float>(x, rows * d);
        var dys = new ReadOnlySpan<float>(dy, rows * d);
        var dxs = new Span<float>(dx, rows * d);
        if (s.Norm == NormKind.RmsNorm)
            RmsNormBackward.Backward(xs, ParamSpan(p.Weight), s.NormWeightOffset, new ReadOnlySpan<float>(rstd, rows), dys, dxs, GradSpan(p.Weight), accumulate);
        else
            LayerNormBackward.Backward(xs, ParamSpan(p.Weight), new ReadOnlySpan<float>(mean, rows), new ReadOnlySpan<float>(rstd, rows), dys, dxs,
                GradSpan(p.Weight), GradSpan(p.Bias), accumulate);
    }

    /// <summary>
    /// Backward of an engine <see cref="Linear"/> (x rows of <c>In</c>, dy rows <paramref name="ldy"/> apart): each stored
    /// part gets its weight and bias gradient from its block of output columns, and the input gradient sums the parts.
    /// A tied head's part is the embedding, so its gradient lands in the embedding's.
    /// </summary>
    private void LinearBackward(Linear linear, float* x, int rows, float* dy, int ldy, float* dx, bool accumulateInput)
    {
        bool accumulate = accumulateInput;
        foreach (var part in linear.Parts)
        {
            int wi = _index[part.Weight.Name];
            int bi = part.Bias.IsEmpty ? -1 : _biasOf[wi];
            Kernels.LinearBackward.Backward(x, linear.In, Param(wi), dy + part.Offset, ldy, rows, linear.In, part.Count, part.Layout == WeightLayout.InOut,
                dx, linear.In, Grad(wi), bi >= 0 ? Grad(bi) : null, accumulate);
            accumulate = true;
        }
    }
}
