using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Copies the single input tensor, multiplied by the per-model <c>scale</c> when set (mergekit <c>passthrough</c>,
/// spec §2.16). With <c>slices</c> this builds frankenmerges: layers are taken from the listed ranges and renumbered.
/// </summary>
public sealed class Passthrough : IMergeMethod
{
    public string Name => "passthrough";

    public string PrettyName => "Passthrough";

    public string? Reference => null;

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Input;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [ParameterDef.OptionalNumber("scale", "multiply the tensor by this")];

    public void Validate(TensorTask task) =>
        MethodHelpers.Require(task.Inputs.Count == 1, task, $"passthrough takes exactly one model per tensor, got {task.Inputs.Count}",
            "use one source per slice (slices: - sources: - model: ... layer_range: [a, b]) or another merge method");

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx)
    {
        var input = ctx.Task.Inputs[0];
        float scale = (float)(input.Parameters.OptionalNumber("scale") ?? 1.0);
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            var buf = sc.Get(0, length);
            input.Source.Read(start, buf);
            if (scale != 1f) TensorPrimitives.Multiply(buf, scale, buf);
            ctx.Output.Write(start, buf);
        });
    }
}
