using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// SCE: Select, Calculate, Erase (FuseChat 2.0, arXiv 2408.07990; spec §2.12). Per tensor, with task vectors Δ_i:
/// <b>select</b> (when <c>select_topk</c> &lt; 1) the <c>k = int(select_topk · count_nonzero(var))</c> positions of
/// largest element-wise population variance of the Δ_i across models; <b>calculate</b> per-model weights
/// <c>w_i ∝ Σ(mask ⊙ Δ_i)² / numel</c>; <b>erase</b> minority signs (sign of Σ Δ_i, 0 → +) and take the weighted
/// disjoint mean. The two reference implementations differ, selected by <c>sce_mask_mode</c>:
/// <c>deltas</c> (mergekit <c>sce</c>, the default, since the YAML dialect is mergekit's) multiplies the deltas by
/// the mask, so unselected positions keep the base, erases on the masked deltas, uniform weights when
/// Σ &lt; 1e-6 and clamps the divisor at 1e-6; <c>weights_only</c> (the FuseChat repository's
/// <c>sce_merging.py</c>) uses the mask only for the weights, erases on the unmasked deltas, uniform weights
/// when Σ = 0 and replaces a zero divisor by 1. Neither uses user weights or lambda.
/// </summary>
public sealed class Sce : IMergeMethod
{
    public string Name => "sce";

    public string PrettyName => "SCE";

    public string? Reference => "https://arxiv.org/abs/2408.07990";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CutToBase;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Number("select_topk", 1.0, "fraction of the high-variance positions selected", MethodHelpers.Density),
        ParameterDef.Choice("sce_mask_mode", "deltas", ["deltas", "weights_only"],
            "deltas: the variance mask zeroes the task vectors (mergekit); weights_only: it only shapes the weights (FuseChat repository)"),
        ParameterDef.Bool("int8_mask", false, "mergekit memory option; accepted, no effect on the result"),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 0);

    public long WorkspaceBytes(TensorTask task) =>
        task.Parameters.Number("select_topk") < 1 ? task.Count * 4 + task.Count / 8 * 4 : 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        int m = task.Inputs.Count;
        if (m == 0)
        {
            MethodHelpers.CopyInput(ctx, task.Base!);
            return;
        }
        double topk = task.Parameters.Number("select_topk");
        bool maskDeltas = task.Parameters.String("sce_mask_mode") == "deltas";
        var deltas = MethodHelpers.Deltas(task);
        long n = ctx.Count;

        // Select: variance across models per element (FP64 per element), kept in a buffer, then a top-k key range on it.
        FloatBuffer? variance = null;
        MaskKey low = MaskKey.Min;
        bool none = false;
        if (topk < 1)
        {
            variance = ctx.Allocate(n);
            var nonzero = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
            {
                deltas(start, length, sc);
                var v = variance.Slice(start, length);
                var ds = sc.Arrays(m, length);
                long nz = 0;
                for (int j = 0; j < length; j++)
                {
                    double mean = 0;
                    for (int i = 0; i < m; i++) mean += ds[i][j];
                    mean /= m;
                    double ss = 0;
                    for (int i = 0; i < m; i++)
                    {
                        double d = ds[i][j] - mean;
                        ss += d * d;
                    }
                    v[j] = (float)(ss / m);
                    if (v[j] != 0) nz++;
                }
                acc[0] += nz;
            });
            long k = (long)(topk * nonzero[0]);
            ctx.Diagnostics.Set("selected_fraction", (double)k / n);
            if (k == 0) none = true;
            else
            {
                var buf = variance;
                var r = OrderStatistics.Select(n, [n - k], (start, length, sc) => buf.Slice(start, length).CopyTo(sc.Get(0, length)), 0x5CE5_E1EC7UL ^ (ulong)n, ctx.Cancellation)[0];
                // Exactly k positions (ties at the threshold by index, like any top-k order).
                low = r.Less == n - k ? new MaskKey(r.Value, long.MinValue) : new MaskKey(r.Value, TieIndex(buf, n, r.Value, n - k - r.Less));
            }
        }

        // Keep (select mask) for elements [start, start + length): variance key >= low.
        void Select(Span<float> d, long start, int length)
        {
            if (variance is null) return;
            if (none)
            {
                d.Clear();
                return;
            }
            var v = variance.Slice(start, length);
            for (int j = 0; j < length; j++)
                if (!low.AtLeast(v[j], start + j)) d[j] = 0;
        }

        // Calculate: Σ (mask ⊙ Δ_i)² per model.
        var sq = Chunked.Reduce(n, 2 * m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                acc[m + i] += TensorPrimitives.SumOfSquares(d);
                Select(d, start, length);
                acc[i] += TensorPrimitives.SumOfSquares(d);
            }
        });
        var w = new double[m];
        double total = 0;
        for (int i = 0; i < m; i++) total += w[i] = sq[i] / n;
        bool uniform = maskDeltas ? total < 1e-6 : total == 0;
        for (int i = 0; i < m; i++) w[i] = uniform ? 1.0 / m : w[i] / total;
        if (uniform) ctx.Diagnostics.Guard(maskDeltas ? "Σ mean(Δ²) < 1e-6: uniform weights" : "Σ of masked squares = 0: uniform weights");
        ctx.Diagnostics.EffectiveWeights(w);
        ctx.Diagnostics.DeltaNorms(Enumerable.Range(0, m).Select(i => Math.Sqrt(sq[m + i])).ToList());

        // Erase + disjoint weighted mean.
        var wf = w.Select(x => (float)x).ToArray();
        var conflicts = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            var b = sc.Get(m, length);
            var sum = sc.Get(m + 1, length);
            var mix = sc.Get(m + 2, length);
            var div = sc.Get(m + 3, length);
            if (maskDeltas)
                for (int i = 0; i < m; i++) Select(sc.Get(i, length), start, length);
            sum.Clear();
            for (int i = 0; i < m; i++) TensorPrimitives.Add(sum, sc.Get(i, length), sum);
            long conflict = 0;
            var ds = sc.Arrays(m, length);
            for (int j = 0; j < length; j++)
            {
                float s = sum[j] >= 0 ? 1 : -1;
                float mx = 0, dv = 0;
                bool pos = false, neg = false;
                for (int i = 0; i < m; i++)
                {
                    float d = ds[i][j];
                    pos |= d > 0;
                    neg |= d < 0;
                    if (MathF.Sign(d) == s)
                    {
                        mx += wf[i] * d;
                        dv += wf[i];
                    }
                }
                if (pos && neg) conflict++;
                mix[j] = mx;
                div[j] = maskDeltas ? MathF.Max(dv, 1e-6f) : dv == 0 ? 1f : dv;
            }
            acc[0] += conflict;
            TensorPrimitives.Divide(mix, div, mix);
            TensorPrimitives.Add(b, mix, b);
            ctx.Output.Write(start, b);
        });
        ctx.Diagnostics.SignConflictRate(conflicts[0] / n);
    }

    private static long TieIndex(FloatBuffer v, long n, float value, long q)
    {
        long seen = 0;
        for (long start = 0; start < n; start += Chunked.Size)
        {
            var s = v.Slice(start, (int)Math.Min(Chunked.Size, n - start));
            for (int j = 0; j < s.Length; j++)
                if (s[j] == value && seen++ == q) return start + j;
        }
        throw new InvalidOperationException("tie index not found");
    }
}
