using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Model Stock (mergekit <c>model_stock</c>, spec §2.11; arXiv 2403.19522): with N ≥ 2 fine-tunes, the mean
/// pairwise cosine of their task vectors <c>cos = mean_{i&lt;j} Δ_i·Δ_j / max(‖Δ_i‖‖Δ_j‖, 1e-6)</c> (each clamped to
/// [−1, 1]) gives <c>t = N cos / (1 + (N − 1) cos)</c> and <c>θ = t · mean θ_i + (1 − t) θ_b</c>. The paper defines
/// θ for two models; averaging the pairwise angles for more is mergekit's choice. With <c>filter_wise</c> each
/// row (vector along the last dimension) gets its own t. mergekit does not guard the denominator
/// (N = 2, cos = −1 divides by zero); here t = 0 (the base) is used there and reported.
/// </summary>
public sealed class ModelStock : IMergeMethod
{
    public string Name => "model_stock";

    public string PrettyName => "Model Stock";

    public string? Reference => "https://arxiv.org/abs/2403.19522";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [ParameterDef.Bool("filter_wise", false, "one t per row instead of per tensor")];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 2);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        int n = task.Inputs.Count;
        var deltas = MethodHelpers.Deltas(task);
        bool filterWise = task.Parameters.Bool("filter_wise") && task.Shape.Rank > 1;
        if (!filterWise)
        {
            var g = Gram.Compute(ctx.Count, n, deltas, ctx.Cancellation);
            double t = StockT(g, n, out double cos, out bool guarded);
            if (guarded) ctx.Diagnostics.Guard("1 + (N-1)·cos ~ 0: t set to 0 (base)");
            ctx.Diagnostics.Set("t", t);
            ctx.Diagnostics.Set("cos", cos);
            ctx.Diagnostics.DeltaNorms(Enumerable.Range(0, n).Select(i => Math.Sqrt(g[i, i])).ToList());
            ctx.Diagnostics.EffectiveWeights(Enumerable.Repeat(t / n, n).ToList());
            Gram.WriteCombination(ctx, task.Inputs, Enumerable.Repeat(t / n, n).ToList(), task.Base, 1 - t);
            return;
        }

        long last = task.Shape[task.Shape.Rank - 1], rows = ctx.Count / last;
        var ts = new float[rows];
        int guards = 0;
        int pairs = n * (n + 1) / 2;
        Chunked.ForRows(rows, last, ctx.Cancellation, (r0, count, sc) =>
        {
            var acc = new double[pairs];
            for (long r = r0; r < r0 + count; r++)
            {
                Array.Clear(acc);
                foreach (var (start, len, _) in new Segments(r * last, last))
                {
                    deltas(start, len, sc);
                    int k = 0;
                    for (int i = 0; i < n; i++)
                        for (int j = i; j < n; j++) acc[k++] += TensorPrimitives.Dot(sc.Get(i, len), sc.Get(j, len));
                }
                var g = new double[n, n];
                int p = 0;
                for (int i = 0; i < n; i++)
                    for (int j = i; j < n; j++) g[i, j] = g[j, i] = acc[p++];
                ts[r] = (float)StockT(g, n, out _, out bool guarded);
                if (guarded) Interlocked.Increment(ref guards);
            }
        });
        if (guards > 0) ctx.Diagnostics.Guard($"{guards} rows with 1 + (N-1)·cos ~ 0: t set to 0 (base)");
        ctx.Diagnostics.Set("t", ts.Average(x => (double)x));
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            deltas(start, length, sc);
            var sum = sc.Get(0, length);
            for (int i = 1; i < n; i++) TensorPrimitives.Add(sum, sc.Get(i, length), sum);
            var b = sc.Get(n, length);
            for (int j = 0; j < length; j++) b[j] += ts[(start + j) / last] / n * sum[j];
            ctx.Output.Write(start, b);
        });
    }

    /// <summary>t from the Gram matrix of the task vectors.</summary>
    public static double StockT(double[,] g, int n, out double cos, out bool guarded)
    {
        double sum = 0;
        int count = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                double denom = Math.Max(Math.Sqrt(Math.Max(0, g[i, i])) * Math.Sqrt(Math.Max(0, g[j, j])), 1e-6);
                sum += Math.Clamp(g[i, j] / denom, -1, 1);
                count++;
            }
        cos = sum / count;
        double d = 1 + (n - 1) * cos;
        guarded = Math.Abs(d) < 1e-12;
        return guarded ? 0 : n * cos / d;
    }
}
