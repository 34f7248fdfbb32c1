using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// NearSwap (mergekit <c>nearswap</c>, spec §2.16): per element <c>w = clamp(t / max(|θ_b − θ_1|, 1e-6), 0, 1)</c>,
/// <c>θ = w θ_1 + (1 − w) θ_b</c>: parameters already close to the base are swapped in, distant ones kept.
/// </summary>
public sealed class NearSwap : IMergeMethod
{
    public string Name => "nearswap";

    public string PrettyName => "NearSwap";

    public string? Reference => "https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [ParameterDef.RequiredNumber("t", "similarity threshold", ParameterDef.NonNegative)];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 1, max: 1);

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var b = ctx.Task.Base!;
        var other = ctx.Task.Inputs[0];
        float t = (float)ctx.Task.Parameters.Number("t");
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            var v0 = sc.Get(0, length);
            var v1 = sc.Get(1, length);
            b.Source.Read(start, v0);
            other.Source.Read(start, v1);
            for (int j = 0; j < length; j++)
            {
                float w = Math.Clamp(t / MathF.Max(MathF.Abs(v0[j] - v1[j]), 1e-6f), 0f, 1f);
                v0[j] = w * v1[j] + (1 - w) * v0[j];
            }
            ctx.Output.Write(start, v0);
        });
    }
}
