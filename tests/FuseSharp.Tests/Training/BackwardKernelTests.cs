using FuseSharp.Tensors.Kernels;
using FuseSharp.Training.Kernels;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>Every backward kernel against central finite differences of an independent float64 forward.</summary>
public class BackwardKernelTests
{
    // ---- cross-entropy ----------------------------------------------------------------------------------------

    private static double CeLoss(double[] z, int target, double a, int[] ids, float[] p, double b)
    {
        double max = z.Max(), s = 0;
        foreach (var v in z) s += Math.Exp(v - max);
        double lse = max + Math.Log(s), loss = 0;
        if (target >= 0) loss += a * (lse - z[target]);
        for (int i = 0; i < ids.Length; i++) loss += b * p[i] * (lse - z[ids[i]]);
        return loss;
    }

    [Theory]
    [InlineData(37, 5, 0.7, 0.0, 0)]   // hard target only
    [InlineData(37, -1, 0.0, 0.3, 4)]  // sparse target only
    [InlineData(2000, 11, 0.9, 0.1, 10)] // the λ-mixture on one row, a vocabulary spanning two sum blocks
    public void CrossEntropy_GradientMatchesFiniteDifferences(int v, int target, double a, double b, int k)
    {
        var z = GradCheck.Random(v, 1, 4f);
        var ids = Enumerable.Range(0, k).Select(i => (i * 7919 + 3) % v).ToArray();
        // Teacher probabilities that do not sum to 1 (rounded teachers do not): the gradient must use Σp.
        var p = GradCheck.Random(k, 2).Select(x => Math.Abs(x) / k * 1.3f).ToArray();
        var grad = (float[])z.Clone();
        var r = CrossEntropyBackward.Row(grad, target, (float)a, ids, p, (float)b, computeGradient: true);
        var zd = GradCheck.ToDouble(z);
        Assert.Equal(CeLoss(zd, target, a, ids, p, b), a * r.TargetLoss + b * r.SparseCrossEntropy, 5);
        GradCheck.Check("cross-entropy", zd, x => CeLoss(x, target, a, ids, p, b), grad, tol: 1e-4);
    }

    [Fact]
    public void CrossEntropy_MatchesReferenceAndLeavesLogitsWithoutGradient()
    {
        var z = GradCheck.Random(300, 3, 8f);
        int[] ids = [3, 200, 299];
        float[] p = [0.5f, 0.25f, 0.25f];
        var copy = (float[])z.Clone();
        var r = CrossEntropyBackward.Row(copy, 7, 1f, ids, p, 0.5f, computeGradient: false);
        Assert.Equal(z, copy);
        var gradRef = new double[300];
        var rr = CrossEntropyBackward.RowReference(z, 7, 1, ids, p, 0.5, gradRef);
        Assert.True(Math.Abs(rr.LogSumExp - r.LogSumExp) < 1e-5);
        Assert.True(Math.Abs(rr.TargetLoss - r.TargetLoss) < 1e-5);
        Assert.True(Math.Abs(rr.SparseCrossEntropy - r.SparseCrossEntropy) < 1e-5);
        // KL = CE − H(p): with H(p) = −Σ p log p.
        double h = -(0.5 * Math.Log(0.5) + 0.5 * Math.Log(0.25));
        Assert.Equal(-h, r.SparseNegEntropy, 12);
        var grad = (float[])z.Clone();
        CrossEntropyBackward.Row(grad, 7, 1f, ids, p, 0.5f, computeGradient: true);
        for (int i = 0; i < 300; i++) Assert.True(Math.Abs(grad[i] - gradRef[i]) < 1e-6, $"{i}: {grad[i]} vs {gradRef[i]}");
    }

    [Fact]
    public void CrossEntropy_IsStableForHugeLogits()
    {
        // exp(200) overflows float: only the max-subtracted form survives.
        var z = new float[] { 200f, -200f, 0f, 200f };
        var r = CrossEntropyBackward.Row(z, 0, 1f, default, default, 0f, computeGradient: true);
        Assert.True(Math.Abs(Math.Log(2) - r.TargetLoss) < 1e-6, $"{r.TargetLoss}");
        Assert.Equal(-0.5f, z[0], 6);
        Assert.Equal(0.5f, z[3], 6);
        Assert.Equal(0f, z[1]);
    }

    // ---- embedding --------------------------------------------------------------------------------------------

    [Fact]
    public void Embedding_ScattersAndSkipsThePaddingRow()
    {
        int v = 10, c = 300;
        int[] ids = [3, 0, 3, 9, 5, 3];
        var dy = GradCheck.Random(ids.Length * c, 4);
        var dw = GradCheck.Random(v * c, 5); // accumulates into what is there
        var expected = (float[])dw.Clone();
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] != 5)
                for (int j = 0; j < c; j++) expected[ids[i] * c + j] += dy[i * c + j];
        EmbeddingBackward.Backward(ids, dy, dw, c, paddingIndex: 5);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], dw[i], 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingBackward.Backward([10], new float[c], new float[v * c], c));
    }

    // ---- linear -----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Linear_GradientsMatchFiniteDifferences(bool inOut)
    {
        int n = 5, fin = 7, fout = 6;
        var x = GradCheck.Random(n * fin, 6);
        var w = GradCheck.Random(fin * fout, 7);
        var bias = GradCheck.Random(fout, 8);
        var wy = GradCheck.Random(n * fout, 9);
        double Forward(double[] xx, double[] ww, double[] bb)
        {
            var y = new double[n * fout];
            for (int r = 0; r < n; r++)
            for (int o = 0; o < fout; o++)
            {
                double s = bb[o];
                for (int i = 0; i < fin; i++) s += xx[r * fin + i] * (inOut ? ww[i * fout + o] : ww[o * fin + i]);
                y[r * fout + o] = s;
            }
            return GradCheck.Dot(y, wy);
        }
        var dx = new float[n * fin];
        var dw = new float[fin * fout];
        var db = new float[fout];
        LinearBackward.Backward(x, w, wy, n, fin, fout, inOut, dx, dw, db);
        double[] xd = GradCheck.ToDouble(x), wd = GradCheck.ToDouble(w), bd = GradCheck.ToDouble(bias);
        GradCheck.Check("dx", xd, xx => Forward(xx, wd, bd), dx);
        GradCheck.Check("dW", wd, ww => Forward(xd, ww, bd), dw);
        GradCheck.Check("db", bd, bb => Forward(xd, wd, bb), db);
        // Accumulation: a second call adds the same amounts again.
        var dx2 = (float[])dx.Clone();
        LinearBackward.Backward(x, w, wy, n, fin, fout, inOut, dx2, dw, db, accumulateInput: true);
        for (int i = 0; i < dx.Length; i++) Assert.Equal(2 * dx[i], dx2[i], 5);
    }

    // ---- norms ------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)] // Gemma stores w − 1
    public void RmsNorm_GradientsMatchFiniteDifferences(float offset)
    {
        int rows = 40, c = 24; // 40 rows: more than one fixed chunk for the weight sum
        const double eps = 1e-6;
        var x = GradCheck.Random(rows * c, 10, 2f);
        var w = GradCheck.Random(c, 11);
        var wy = GradCheck.Random(rows * c, 12);
        double Forward(double[] xx, double[] ww)
        {
            var y = new double[rows * c];
            for (int r = 0; r < rows; r++)
            {
                double ss = 0;
                for (int i = 0; i < c; i++) ss += xx[r * c + i] * xx[r * c + i];
                double s = 1 / Math.Sqrt(ss / c + eps);
                for (int i = 0; i < c; i++) y[r * c + i] = xx[r * c + i] * s * (offset + ww[i]);
            }
            return GradCheck.Dot(y, wy);
        }
        var rstd = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < c; i++) ss += (double)x[r * c + i] * x[r * c + i];
            rstd[r] = (float)(1 / Math.Sqrt(ss / c + eps));
        }
        var dx = new float[rows * c];
        var dw = new float[c];
        RmsNormBackward.Backward(x, w, offset, rstd, wy, dx, dw);
        double[] xd = GradCheck.ToDouble(x), wd = GradCheck.ToDouble(w);
        GradCheck.Check("dx", xd, xx => Forward(xx, wd), dx, samples: 200);
        GradCheck.Check("dw", wd, ww => Forward(xd, ww), dw);
        // In place: dx written over dy gives the same values.
        var inPlace = (float[])wy.Clone();
        RmsNormBackward.Backward(x, w, offset, rstd, inPlace, inPlace, default);
        Assert.Equal(dx, inPlace);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // MPT: no bias
    public void LayerNorm_GradientsMatchFiniteDifferences(bool withBias)
    {
        int rows = 20, c = 16;
        const double eps = 1e-5;
        var x = GradCheck.Random(rows * c, 13, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 5f; // a large mean: the centred form must keep its precision
        var w = GradCheck.Random(c, 14);
        var bias = GradCheck.Random(c, 15);
        var wy = GradCheck.Random(rows * c, 16);
        double Forward(double[] xx, double[] ww, double[] bb)
        {
            var y = new double[rows * c];
            for (int r = 0; r < rows; r++)
            {
                double mu = 0, var = 0;
                for (int i = 0; i < c; i++) mu += xx[r * c + i];
                mu /= c;
                for (int i = 0; i < c; i++) var += (xx[r * c + i] - mu) * (xx[r * c + i] - mu);
                double s = 1 / Math.Sqrt(var / c + eps);
                for (int i = 0; i < c; i++) y[r * c + i] = (xx[r * c + i] - mu) * s * ww[i] + (withBias ? bb[i] : 0);
            }
            return GradCheck.Dot(y, wy);
        }
        var mean = new float[rows];
        var rstd = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double mu = 0, var = 0;
            for (int i = 0; i < c; i++) mu += x[r * c + i];
            mu /= c;
            for (int i = 0; i < c; i++) var += (x[r * c + i] - mu) * (x[r * c + i] - mu);
            mean[r] = (float)mu;
            rstd[r] = (float)(1 / Math.Sqrt(var / c + eps));
        }
        var dx = new float[rows * c];
        var dw = new float[c];
        var db = withBias ? new float[c] : [];
        LayerNormBackward.Backward(x, w, mean, rstd, wy, dx, dw, db);
        double[] xd = GradCheck.ToDouble(x), wd = GradCheck.ToDouble(w), bd = GradCheck.ToDouble(bias);
        GradCheck.Check("dx", xd, xx => Forward(xx, wd, bd), dx, samples: 120, tol: 1e-3);
        GradCheck.Check("dw", wd, ww => Forward(xd, ww, bd), dw);
        if (withBias) GradCheck.Check("db", bd, bb => Forward(xd, wd, bb), db);
    }

    // ---- RoPE -------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(16, 16)]
    [InlineData(16, 8)] // GPT-NeoX partial rotary: the last 8 dimensions pass through
    public void Rope_GradientMatchesFiniteDifferences(int headDim, int rotaryDim)
    {
        int tokens = 3, heads = 2, width = heads * headDim, h = rotaryDim / 2;
        var x = GradCheck.Random(tokens * width, 17);
        var wy = GradCheck.Random(tokens * width, 18);
        var cos = new float[tokens * h];
        var sin = new float[tokens * h];
        for (int t = 0; t < tokens; t++)
        for (int i = 0; i < h; i++)
        {
            double angle = (t + 1) * Math.Pow(10000, -2.0 * i / rotaryDim);
            cos[t * h + i] = (float)Math.Cos(angle);
            sin[t * h + i] = (float)Math.Sin(angle);
        }
        double Forward(double[] xx)
        {
            var y = (double[])xx.Clone();
            for (int t = 0; t < tokens; t++)
            for (int hd = 0; hd < heads; hd++)
            for (int i = 0; i < h; i++)
            {
                int a = t * width + hd * headDim + i, b = a + h;
                y[a] = xx[a] * cos[t * h + i] - xx[b] * sin[t * h + i];
                y[b] = xx[b] * cos[t * h + i] + xx[a] * sin[t * h + i];
            }
            return GradCheck.Dot(y, wy);
        }
        var grad = (float[])wy.Clone();
        RopeBackward.ApplyRows(grad, tokens, width, width, headDim, rotaryDim, cos, sin);
        GradCheck.Check("rope", GradCheck.ToDouble(x), Forward, grad);
    }

    // ---- activations ------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.Gelu)]
    [InlineData(ActivationKind.GeluTanh)]
    [InlineData(ActivationKind.QuickGelu)]
    [InlineData(ActivationKind.Relu)]
    public void Activations_GradientsMatchFiniteDifferences(ActivationKind kind)
    {
        int n = 64;
        var x = GradCheck.Random(n, 19, 6f);
        for (int i = 0; i < n; i++) if (Math.Abs(x[i]) < 1e-3) x[i] = 0.5f; // ReLU's kink
        var up = GradCheck.Random(n, 20, 2f);
        var wy = GradCheck.Random(n, 21);
        // An independent float64 forward: GELU through the Taylor/continued-fraction-free integral Φ(x) = ½(1 + erf(x/√2)).
        double Act(double v) => kind switch
        {
            ActivationKind.Silu => v / (1 + Math.Exp(-v)),
            ActivationKind.Gelu => v * Phi(v),
            ActivationKind.GeluTanh => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
            ActivationKind.QuickGelu => v / (1 + Math.Exp(-1.702 * v)),
            ActivationKind.Relu => Math.Max(v, 0),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var dx = new float[n];
        ActivationBackward.Backward(x, wy, dx, kind);
        GradCheck.Check($"{kind}", GradCheck.ToDouble(x), xx => GradCheck.Dot(xx.Select(Act).ToArray(), wy), dx, tol: 1e-4);
        var dg = new float[n];
        var du = new float[n];
        ActivationBackward.GatedBackward(x, up, wy, dg, du, kind);
        double[] xd = GradCheck.ToDouble(x), ud = GradCheck.ToDouble(up);
        double Gated(double[] g, double[] u) => GradCheck.Dot(g.Select((v, i) => Act(v) * u[i]).ToArray(), wy);
        GradCheck.Check($"{kind} gate", xd, g => Gated(g, ud), dg, tol: 1e-4);
        GradCheck.Check($"{kind} up", ud, u => Gated(xd, u), du, tol: 1e-4);
    }

    /// <summary>Φ by Simpson integration of the normal density (independent of the kernel's erfc).</summary>
    private static double Phi(double x)
    {
        const int steps = 200;
        double a = 0, b = x, hh = (b - a) / steps, s = 0;
        for (int i = 0; i <= steps; i++)
        {
            double t = a + i * hh, f = Math.Exp(-0.5 * t * t);
            s += f * (i == 0 || i == steps ? 1 : i % 2 == 1 ? 4 : 2);
        }
        return 0.5 + s * hh / 3 / Math.Sqrt(2 * Math.PI);
    }

    [Fact]
    public void Clamp_PassesGradientOnlyInsideTheBounds()
    {
        float[] x = [-1f, -0.35f, 0f, 0.35f, 0.36f];
        float[] dy = [1f, 2f, 3f, 4f, 5f];
        var dx = new float[5];
        ActivationBackward.ClampBackward(x, 0.35f, dy, dx);
        Assert.Equal(new[] { 0f, 2f, 3f, 4f, 0f }, dx);
    }

    // ---- attention --------------------------------------------------------------------------------------------

    /// <summary>Independent float64 forward: output (B, T, H, D) and log-sum-exp (B, H, T).</summary>
    private static (double[] O, double[] Lse) AttentionForward(double[] q, double[] k, double[] v, CausalAttentionShape s, float[] alibi)
    {
        var o = new double[q.Length];
        var lse = new double[s.Batch * s.Heads * s.Length];
        for (int b = 0; b < s.Batch; b++)
        for (int h = 0; h < s.Heads; h++)
        for (int t = 0; t < s.Length; t++)
        {
            int kvh = h / s.Group;
            var sc = new List<(int J, double S)>();
            for (int j = 0; j <= t; j++)
            {
                if (s.SlidingWindow > 0 && t - j >= s.SlidingWindow) continue;
                double dot = 0;
                for (int c = 0; c < s.HeadDim; c++)
                    dot += q[((b * s.Length + t) * s.Heads + h) * s.HeadDim + c] * k[((b * s.KvHeads + kvh) * s.Length + j) * s.HeadDim + c];
                sc.Add((j, s.Scale * dot + (alibi.Length > 0 ? alibi[h] * (j - t) : 0)));
            }
            double max = sc.Max(e => e.S), sum = sc.Sum(e => Math.Exp(e.S - max));
            lse[(b * s.Heads + h) * s.Length + t] = max + Math.Log(sum);
            foreach (var (j, sv) in sc)
            {
                double pr = Math.Exp(sv - max) / sum;
                for (int c = 0; c < s.HeadDim; c++)
                    o[((b * s.Length + t) * s.Heads + h) * s.HeadDim + c] += pr * v[((b * s.KvHeads + kvh) * s.Length + j) * s.HeadDim + c];
            }
        }
        return (o, lse);
    }

    public static TheoryData<int, int, int, int, int, int, bool> AttentionCases => new()
    {
        { 2, 5, 2, 2, 4, 0, false },    // MHA
        { 1, 66, 4, 2, 8, 0, false },   // GQA, more than one query block of 64
        { 1, 9, 2, 1, 4, 3, false },    // sliding window 3
        { 2, 6, 4, 4, 4, 0, true },     // ALiBi (MPT)
    };

    [Theory]
    [MemberData(nameof(AttentionCases))]
    public void Attention_GradientsMatchFiniteDifferencesAndTheReference(int batch, int length, int heads, int kvHeads, int headDim, int window, bool alibi)
    {
        var s = new CausalAttentionShape(batch, length, heads, kvHeads, headDim, 1f / MathF.Sqrt(headDim), window);
        int nq = batch * length * heads * headDim, nk = batch * kvHeads * length * headDim;
        var q = GradCheck.Random(nq, 22, 1.5f);
        var k = GradCheck.Random(nk, 23, 1.5f);
        var v = GradCheck.Random(nk, 24);
        var wy = GradCheck.Random(nq, 25);
        float[] slopes = alibi ? Enumerable.Range(1, heads).Select(i => MathF.Pow(2, -8f * i / heads)).ToArray() : [];
        double[] qd = GradCheck.ToDouble(q), kd = GradCheck.ToDouble(k), vd = GradCheck.ToDouble(v);
        var (o, lse) = AttentionForward(qd, kd, vd, s, slopes);
        var dq = new float[nq];
        var dk = new float[nk];
        var dv = new float[nk];
        AttentionBackward.Backward(q, k, v, o.Select(x => (float)x).ToArray(), lse.Select(x => (float)x).ToArray(), wy, s, slopes, dq, dk, dv);
        int samples = nq > 400 ? 40 : 0;
        GradCheck.Check("dq", qd, x => GradCheck.Dot(AttentionForward(x, kd, vd, s, slopes).O, wy), dq, samples: samples, tol: 5e-4);
        GradCheck.Check("dk", kd, x => GradCheck.Dot(AttentionForward(qd, x, vd, s, slopes).O, wy), dk, samples: samples, tol: 5e-4);
        GradCheck.Check("dv", vd, x => GradCheck.Dot(AttentionForward(qd, kd, x, s, slopes).O, wy), dv, samples: samples, tol: 5e-4);
        // The blocked kernel against its float64 reference.
        var rq = new float[nq];
        var rk = new float[nk];
        var rv = new float[nk];
        AttentionBackward.BackwardReference(q, k, v, wy, s, slopes, rq, rk, rv);
        for (int i = 0; i < nq; i++) Assert.True(Math.Abs(rq[i] - dq[i]) < 1e-5, $"dq[{i}] {dq[i]} vs reference {rq[i]}");
        for (int i = 0; i < nk; i++) Assert.True(Math.Abs(rk[i] - dk[i]) < 1e-5 && Math.Abs(rv[i] - dv[i]) < 1e-5, $"dk/dv[{i}]");
    }
}
