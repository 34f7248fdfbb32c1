using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// NuSLERP (mergekit <c>nuslerp</c>, spec §2.8): SLERP of two models with <c>t = w_2 / (w_1 + w_2)</c> (0.5 when
/// |Σw| &lt; 1e-6), of their task vectors when a base is given (<c>θ_b + slerp(t, Δ_1, Δ_2)</c>). With
/// <c>nuslerp_flatten</c> (default) one angle covers the whole tensor; otherwise each row (the vectors along the
/// last dimension) gets its own angle, or, with <c>nuslerp_row_wise: true</c>, each column (the vectors along
/// dimension 0). mergekit's docs describe row_wise the other way round; this follows its code.
/// </summary>
public sealed class NuSlerp : IMergeMethod
{
    public string Name => "nuslerp";

    public string PrettyName => "NuSLERP";

    public string? Reference => null;

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Optional;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.Bool("nuslerp_flatten", true, "one angle for the whole tensor"),
        ParameterDef.Bool("nuslerp_row_wise", false, "without flatten: one angle per column (vectors along dim 0) instead of per row"),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [MethodHelpers.Weight];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: false, min: 2, max: 2);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        double w1 = task.Inputs[0].Weight, w2 = task.Inputs[1].Weight;
        double t = Math.Abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2);
        if (Math.Abs(w1 + w2) < 1e-6) ctx.Diagnostics.Guard("|w1 + w2| < 1e-6: t set to 0.5");
        ctx.Diagnostics.Set("t", t);
        var b = task.Base;
        ChunkProducer vectors = (start, length, sc) =>
        {
            var x0 = sc.Get(0, length);
            var x1 = sc.Get(1, length);
            task.Inputs[0].Source.Read(start, x0);
            task.Inputs[1].Source.Read(start, x1);
            if (b is null) return;
            var bb = sc.Get(2, length);
            b.Source.Read(start, bb);
            TensorPrimitives.Subtract(x0, bb, x0);
            TensorPrimitives.Subtract(x1, bb, x1);
        };

        bool flatten = task.Parameters.Bool("nuslerp_flatten");
        if (flatten || task.Shape.Rank <= 1)
        {
            var g = Gram.Compute(ctx.Count, 2, vectors, ctx.Cancellation);
            var (c0, c1, cos, lerp) = Spherical.NuSlerp(t, g[0, 0], g[1, 1], g[0, 1]);
            ctx.Diagnostics.Set("cos", cos);
            if (lerp) ctx.Diagnostics.Guard("|sin θ| < 1e-8: used linear interpolation");
            ctx.Diagnostics.EffectiveWeights([c0, c1]);
            Gram.WriteCombination(ctx, task.Inputs, [c0, c1], b, b is null ? 0 : 1 - c0 - c1);
            return;
        }

        // Per vector: rows of the last dimension, or columns (vectors along dim 0) with row_wise.
        bool rowWise = task.Parameters.Bool("nuslerp_row_wise");
        long rows = task.Shape[0], cols = ctx.Count / rows;
        long last = task.Shape[task.Shape.Rank - 1];
        long vectorsCount = rowWise ? cols : ctx.Count / last;
        var c0s = new float[vectorsCount];
        var c1s = new float[vectorsCount];
        int lerps = 0;
        if (rowWise)
        {
            var s = Chunked.ReduceRows(rows, cols, (int)(3 * cols), ctx.Cancellation, (r0, count, sc, acc) =>
            {
                for (long r = r0; r < r0 + count; r++)
                    foreach (var (start, len, off) in new Segments(r * cols, cols))
                    {
                        vectors(start, len, sc);
                        var x0 = sc.Get(0, len);
                        var x1 = sc.Get(1, len);
                        for (int j = 0; j < len; j++)
                        {
                            long c = off + j;
                            acc[(int)(3 * c)] += (double)x0[j] * x0[j];
                            acc[(int)(3 * c + 1)] += (double)x1[j] * x1[j];
                            acc[(int)(3 * c + 2)] += (double)x0[j] * x1[j];
                        }
                    }
            });
            for (long c = 0; c < cols; c++) Set(c, s[3 * c], s[3 * c + 1], s[3 * c + 2]);
        }
        else
        {
            long n = vectorsCount;
            Chunked.ForRows(n, last, ctx.Cancellation, (r0, count, sc) =>
            {
                for (long r = r0; r < r0 + count; r++)
                {
                    double a = 0, bb = 0, d = 0;
                    foreach (var (start, len, _) in new Segments(r * last, last))
                    {
                        vectors(start, len, sc);
                        a += TensorPrimitives.SumOfSquares(sc.Get(0, len));
                        bb += TensorPrimitives.SumOfSquares(sc.Get(1, len));
                        d += TensorPrimitives.Dot(sc.Get(0, len), sc.Get(1, len));
                    }
                    Set(r, a, bb, d);
                }
            });
        }
        if (lerps > 0) ctx.Diagnostics.Guard($"{lerps} of {vectorsCount} vectors nearly colinear (|sin θ| < 1e-8): linear interpolation");

        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            vectors(start, length, sc);
            var x0 = sc.Get(0, length);
            var x1 = sc.Get(1, length);
            var res = sc.Get(3, length);
            for (int j = 0; j < length; j++)
            {
                long e = start + j;
                long v = rowWise ? e % cols : e / last;
                res[j] = c0s[v] * x0[j] + c1s[v] * x1[j];
            }
            if (b is not null)
            {
                var bb = sc.Get(2, length);
                TensorPrimitives.Add(res, bb, res);
            }
            ctx.Output.Write(start, res);
        });

        void Set(long v, double a, double bb, double d)
        {
            var (c0, c1, _, lerp) = Spherical.NuSlerp(t, a, bb, d);
            c0s[v] = (float)c0;
            c1s[v] = (float)c1;
            if (lerp) Interlocked.Increment(ref lerps);
        }
    }
}
