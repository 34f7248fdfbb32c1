using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// VaRM, variation-ratio merge (FuseChat v1, arXiv 2402.16107; spec §2.13), the paper's formula: per tensor,
/// <c>W_j = mean(Δ_j²) / Σ_k mean(Δ_k²)</c> with Δ_j = θ_j − θ_pivot (uniform when all are 0), and
/// <c>θ = Σ_j W_j θ_j</c> over the listed (target) models; <c>base_model</c> is the pivot. The released VaRM
/// script differs (it compares the two targets with each other and, with its default exclusion pattern, copies
/// the first model); it is not reproduced.
/// </summary>
public sealed class Varm : IMergeMethod
{
    public string Name => "varm";

    public string PrettyName => "VaRM";

    public string? Reference => "https://arxiv.org/abs/2402.16107";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CutToBase;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 1);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        int m = task.Inputs.Count;
        var sq = Chunked.Reduce(ctx.Count, m, ctx.Cancellation, (start, length, sc, acc) =>
        {
            MethodHelpers.Deltas(task)(start, length, sc);
            for (int i = 0; i < m; i++) acc[i] += TensorPrimitives.SumOfSquares(sc.Get(i, length));
        });
        double total = sq.Sum();
        var w = sq.Select(x => total == 0 ? 1.0 / m : x / total).ToArray();
        if (total == 0) ctx.Diagnostics.Guard("all task vectors are zero: uniform weights");
        ctx.Diagnostics.EffectiveWeights(w);
        ctx.Diagnostics.DeltaNorms(sq.Select(Math.Sqrt).ToList());
        Gram.WriteCombination(ctx, task.Inputs, w, null, 0);
    }
}
