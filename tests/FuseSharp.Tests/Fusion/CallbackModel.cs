using FuseSharp.IO;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Tests.Fusion;

/// <summary>A model that calls back before every run (tests interrupt a training at a chosen micro-batch with it).</summary>
internal sealed class CallbackModel(ITrainableModel inner, Action onRun) : ITrainableModel
{
    public ModelConfig Config => inner.Config;

    public TensorArena Parameters => inner.Parameters;

    public TensorArena Gradients => inner.Gradients;

    public int VocabSize => inner.VocabSize;

    public int MaxPositions => inner.MaxPositions;

    public void Run(MicroBatch batch, MicroBatchLoss loss, bool backward)
    {
        onRun();
        inner.Run(batch, loss, backward);
    }

    public void Dispose() => inner.Dispose();
}
