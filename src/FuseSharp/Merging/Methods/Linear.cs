using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Weighted average ("model soup", mergekit <c>linear</c>, spec §2.1): <c>Σ w_i θ_i</c>, divided by <c>Σ w_i</c> when
/// <c>normalize</c> (default true). There is no base role: a <c>base_model</c> is one more input and needs a weight.
/// mergekit divides without a guard; here a zero weight sum with normalize is a planning error instead of NaNs.
/// </summary>
public sealed class Linear : IMergeMethod
{
    public string Name => "linear";

    public string PrettyName => "Linear";

    public string? Reference => "https://arxiv.org/abs/2203.05482";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Input;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [ParameterDef.Bool("normalize", true, "divide by the sum of the weights")];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [MethodHelpers.Weight];

    public void Validate(TensorTask task)
    {
        MethodHelpers.RequireCounts(task, Name, needsBase: false, min: 1);
        if (task.Parameters.Bool("normalize"))
            MethodHelpers.Require(Math.Abs(task.Inputs.Sum(i => i.Weight)) >= 1e-8, task, "the weights sum to 0, so normalize: true would divide by zero",
                "change the weights or set 'normalize: false'");
    }

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx) => WeightedSum(ctx, ctx.Task.Parameters.Bool("normalize"));

    /// <summary>Writes <c>Σ w_i θ_i</c> (divided by Σ w_i when <paramref name="normalize"/>) in one streaming pass.</summary>
    internal static void WeightedSum(TensorMergeContext ctx, bool normalize)
    {
        var inputs = ctx.Task.Inputs;
        double sum = inputs.Sum(i => i.Weight);
        var w = inputs.Select(i => (float)(normalize ? i.Weight / sum : i.Weight)).ToArray();
        ctx.Diagnostics.EffectiveWeights(w.Select(x => (double)x).ToList());
        var stored = TaskVectorKernels.CanDecodeBFloat16 && inputs.Count <= 8 && inputs.All(i => i.Source is StoredTensorSource { DType: DType.BF16 })
            ? inputs.Select(i => (StoredTensorSource)i.Source).ToArray() : null;
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            var acc = sc.Get(0, length);
            // Stored BF16 inputs are decoded in registers (bitwise the reads below); a non-finite value sends the chunk
            // through the checked reads, which name it.
            if (stored is not null && float.IsFinite(CombineStored(stored, w, start, acc)))
            {
                ctx.Output.Write(start, acc);
                return;
            }
            var x = sc.Get(1, length);
            inputs[0].Source.Read(start, acc);
            TensorPrimitives.Multiply(acc, w[0], acc);
            for (int i = 1; i < inputs.Count; i++)
            {
                inputs[i].Source.Read(start, x);
                TensorPrimitives.MultiplyAdd(x, w[i], acc, acc);
            }
            ctx.Output.Write(start, acc);
        });
    }

    private static unsafe float CombineStored(StoredTensorSource[] stored, float[] w, long start, Span<float> acc)
    {
        int length = acc.Length;
        Span<nint> x = stackalloc nint[stored.Length - 1];
        for (int i = 1; i < stored.Length; i++) x[i - 1] = (nint)stored[i].BFloat16Bits(start, length);
        return MethodHelpers.CombineBFloat16(stored[0].BFloat16Bits(start, length), w[0], x, w.AsSpan(1), acc);
    }
}
