using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Multi-SLERP (mergekit <c>multislerp</c>, spec §2.9): barycentric interpolation on the hypersphere of any
/// number of models (of task vectors with a base). With x_i the flattened tensors, u_i = x_i/(‖x_i‖ + eps),
/// weights normalised to sum 1 (<c>normalize_weights</c>): m = Σ w_i u_i / ‖·‖, tangent τ = Σ w_i (u_i − (u_i·m) m),
/// r = m cos‖τ‖ + τ sin‖τ‖/‖τ‖ (‖τ‖ += eps), scaled by Σ w_i ‖x_i‖. Every vector involved lies in the span of the
/// x_i, so the whole computation runs on their Gram matrix (one pass) and the result is written as
/// <c>Σ f_i x_i</c> (a second pass): no full-size temporaries. (τ is zero in exact arithmetic; the formula is
/// kept as the reference writes it.) A near-zero weighted mean is an error except for two models, where the
/// reference falls back to <c>w_1 x_1 + w_2 x_2</c>.
/// </summary>
public sealed class MultiSlerp : IMergeMethod
{
    public string Name => "multislerp";

    public string PrettyName => "Multi-SLERP";

    public string? Reference => "https://goddard.blog/posts/multislerp-wow-what-a-cool-idea";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Optional;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Bool("normalize_weights", true, "scale the weights to sum to 1"),
        ParameterDef.Number("eps", 1e-8, "numerical stability constant", ParameterDef.NonNegative),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [MethodHelpers.Weight];

    public void Validate(TensorTask task)
    {
        MethodHelpers.RequireCounts(task, Name, needsBase: false, min: 1);
        if (task.Parameters.Bool("normalize_weights"))
            MethodHelpers.Require(Math.Abs(task.Inputs.Sum(i => i.Weight)) > 0, task, "the weights sum to 0 and normalize_weights is true", "change the weights");
    }

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        var inputs = task.Inputs;
        int m = inputs.Count;
        var b = task.Base;
        if (m == 1)
        {
            MethodHelpers.CopyInput(ctx, inputs[0]);
            return;
        }
        double eps = task.Parameters.Number("eps");
        var w = inputs.Select(i => i.Weight).ToArray();
        if (task.Parameters.Bool("normalize_weights"))
        {
            double sw = w.Sum();
            for (int i = 0; i < m; i++) w[i] /= sw;
        }
        var g = Gram.Compute(ctx.Count, m, Vectors(task), ctx.Cancellation);
        var n = new double[m];
        for (int i = 0; i < m; i++) n[i] = Math.Sqrt(Math.Max(0, g[i, i]));

        // m_raw = Σ w_i u_i = Σ a_i x_i with a_i = w_i / (n_i + eps).
        var a = new double[m];
        for (int i = 0; i < m; i++) a[i] = w[i] / (n[i] + eps);
        double meanNorm = Math.Sqrt(Gram.Quadratic(g, a));
        double[] f;
        if (meanNorm < eps)
        {
            if (m != 2)
                throw new MergeException("the weighted mean of the unit vectors is zero (antipodal models whose weights cancel)", task.Name,
                    "change the weights, or use another method for these models");
            ctx.Diagnostics.Guard("weighted mean of unit vectors ~ 0: linear fallback w1 x1 + w2 x2");
            f = [w[0], w[1]];
        }
        else
        {
            for (int i = 0; i < m; i++) a[i] /= meanNorm; // now m = Σ a_i x_i is a unit vector
            // dots_i = u_i · m; τ = Σ w_i u_i − (Σ w_i dots_i) m.
            var dots = new double[m];
            for (int i = 0; i < m; i++)
            {
                double s = 0;
                for (int j = 0; j < m; j++) s += a[j] * g[i, j];
                dots[i] = s / (n[i] + eps);
            }
            double wd = 0;
            for (int i = 0; i < m; i++) wd += w[i] * dots[i];
            var tau = new double[m];
            for (int i = 0; i < m; i++) tau[i] = w[i] / (n[i] + eps) - wd * a[i];
            double tauNorm = Math.Sqrt(Gram.Quadratic(g, tau)) + eps;
            double avgNorm = 0;
            for (int i = 0; i < m; i++) avgNorm += n[i] * w[i];
            f = new double[m];
            for (int i = 0; i < m; i++) f[i] = avgNorm * (a[i] * Math.Cos(tauNorm) + tau[i] * Math.Sin(tauNorm) / tauNorm);
        }
        ctx.Diagnostics.EffectiveWeights(f);
        Gram.WriteCombination(ctx, inputs, f, b, b is null ? 0 : 1 - f.Sum());
    }

    /// <summary>Buffers 0..m-1: the inputs, minus the base when there is one.</summary>
    internal static ChunkProducer Vectors(TensorTask task)
    {
        var b = task.Base;
        int m = task.Inputs.Count;
        return (start, length, sc) =>
        {
            Span<float> bb = b is null ? default : sc.Get(m, length);
            if (b is not null) b.Source.Read(start, bb);
            for (int i = 0; i < m; i++)
            {
                var x = sc.Get(i, length);
                task.Inputs[i].Source.Read(start, x);
                if (b is not null) TensorPrimitives.Subtract(x, bb, x);
            }
        };
    }
}
