using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Karcher (Riemannian) mean on the unit sphere (mergekit <c>karcher</c>, spec §2.10), equal weights 1/N, no
/// base role: norms n_i, units u_i = x_i/n_i (zero tensors stay zero), models with n_i &gt; tol take part; the
/// mean starts at the normalised Σ α u_i and moves along the weighted log-map tangent
/// <c>T = Σ α_i (θ_i / sin θ_i)(u_i − cos θ_i · u)</c> for up to <c>max_iter</c> steps until ‖T‖ &lt; tol; the result is
/// <c>(Σ_i n_i / N) · u</c>. The mean always lies in the span of the inputs, so it is carried as coefficients over
/// them and every inner product comes from one Gram pass; a second pass writes the result.
/// </summary>
public sealed class Karcher : IMergeMethod
{
    public string Name => "karcher";

    public string PrettyName => "Karcher Mean";

    public string? Reference => "https://en.wikipedia.org/wiki/Karcher_mean";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Input;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Number("max_iter", 10, "maximum iterations", ParameterDef.PositiveInteger),
        ParameterDef.Number("tol", 1e-5, "convergence tolerance", ParameterDef.Positive),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: false, min: 1);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var inputs = ctx.Task.Inputs;
        int n = inputs.Count;
        if (n == 1)
        {
            MethodHelpers.CopyInput(ctx, inputs[0]);
            return;
        }
        int maxIter = (int)ctx.Task.Parameters.Number("max_iter");
        double tol = ctx.Task.Parameters.Number("tol");
        var g = Gram.Compute(ctx.Count, n, MultiSlerp.Vectors(ctx.Task), ctx.Cancellation);
        var coefficients = Solve(g, Enumerable.Repeat(1.0 / n, n).ToArray(), maxIter, tol, out int iterations);
        ctx.Diagnostics.Set("iterations", iterations);
        ctx.Diagnostics.EffectiveWeights(coefficients);
        Gram.WriteCombination(ctx, inputs, coefficients, null, 0);
    }

    /// <summary>
    /// The Karcher mean as coefficients over the raw inputs x_i, from their Gram matrix <paramref name="g"/> and
    /// weights <paramref name="alphas"/> (mergekit <c>karcher_merge_tensors</c>, in coefficient space).
    /// </summary>
    public static double[] Solve(double[,] g, IReadOnlyList<double> alphas, int maxIter, double tol, out int iterations)
    {
        int n = alphas.Count;
        iterations = 0;
        var norms = new double[n];
        for (int i = 0; i < n; i++) norms[i] = Math.Sqrt(Math.Max(0, g[i, i]));
        var valid = Enumerable.Range(0, n).Where(i => norms[i] > tol).ToList();
        var result = new double[n];
        if (valid.Count == 0) return result; // all (near) zero: zeros
        // Unit Gram matrix over the valid models.
        int v = valid.Count;
        var gu = new double[v, v];
        for (int a = 0; a < v; a++)
            for (int b = 0; b < v; b++) gu[a, b] = g[valid[a], valid[b]] / (norms[valid[a]] * norms[valid[b]]);
        double alphaSum = valid.Sum(i => alphas[i]);
        var alpha = valid.Select(i => alphas[i] / alphaSum).ToArray();

        var mean = (double[])alpha.Clone();
        double meanNorm = Math.Sqrt(Gram.Quadratic(gu, mean));
        if (meanNorm < tol)
        {
            Array.Clear(mean);
            mean[0] = 1;
        }
        else for (int a = 0; a < v; a++) mean[a] /= meanNorm;

        var tangent = new double[v];
        for (int it = 0; it < maxIter; it++)
        {
            iterations = it + 1;
            Array.Clear(tangent);
            for (int a = 0; a < v; a++)
            {
                double dot = 0;
                for (int b = 0; b < v; b++) dot += mean[b] * gu[b, a];
                dot = Math.Clamp(dot, -1, 1);
                double theta = Math.Acos(dot);
                if (theta < tol) continue;
                double f = alpha[a] * theta / Math.Sin(theta);
                tangent[a] += f;
                for (int b = 0; b < v; b++) tangent[b] -= f * dot * mean[b];
            }
            double tn = Math.Sqrt(Gram.Quadratic(gu, tangent));
            if (tn < tol) break;
            double c = Math.Cos(tn), s = Math.Sin(tn) / tn;
            for (int b = 0; b < v; b++) mean[b] = c * mean[b] + s * tangent[b];
            double un = Math.Sqrt(Gram.Quadratic(gu, mean));
            if (un > tol)
                for (int b = 0; b < v; b++) mean[b] /= un;
        }
        double scale = 0;
        for (int i = 0; i < n; i++) scale += alphas[i] * norms[i];
        for (int a = 0; a < v; a++) result[valid[a]] = scale * mean[a] / norms[valid[a]];
        return result;
    }
}
