using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Spherical linear interpolation between the base (t = 0) and one other model (t = 1) over the whole tensor
/// (mergekit <c>slerp</c>, spec §2.7; coefficients in <see cref="Spherical.Slerp"/>). One pass reduces the norms and
/// the dot product in FP64, a second writes <c>c0·v0 + c1·v1</c>. <c>t</c> is usually a filtered gradient over layers.
/// </summary>
public sealed class Slerp : IMergeMethod
{
    public string Name => "slerp";

    public string PrettyName => "SLERP";

    public string? Reference => "https://en.wikipedia.org/wiki/Slerp";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [ParameterDef.RequiredNumber("t", "interpolation position: 0 = base, 1 = the other model")];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 1, max: 1);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var v0 = ctx.Task.Base!;
        var v1 = ctx.Task.Inputs[0];
        double t = ctx.Task.Parameters.Number("t");
        ChunkProducer read = (start, length, sc) =>
        {
            v0.Source.Read(start, sc.Get(0, length));
            v1.Source.Read(start, sc.Get(1, length));
        };
        var g = TaskVectorKernels.CanDecodeBFloat16 && StoredBFloat16.Of(ctx.Task) is { } stored
            ? Gram.ComputeStoredBFloat16(ctx.Count, stored, read, ctx.Cancellation)
            : Gram.Compute(ctx.Count, 2, read, ctx.Cancellation);
        double[] s = [g[0, 0], g[1, 1], g[0, 1]];
        var (c0, c1, cos, lerp) = Spherical.Slerp(t, s[0], s[1], s[2]);
        ctx.Diagnostics.Set("t", t);
        ctx.Diagnostics.Set("cos", cos);
        if (lerp) ctx.Diagnostics.Guard("|cos| > 0.9995: nearly colinear, used linear interpolation");
        if (s[0] <= 1e-16 || s[1] <= 1e-16) ctx.Diagnostics.Guard("a tensor has norm <= 1e-8 and was not normalised");
        ctx.Diagnostics.EffectiveWeights([c1]);
        Gram.WriteCombination(ctx, [v1], [c1], v0, c0);
    }
}
