using FuseSharp.IO;
using FuseSharp.Training.Data;

namespace FuseSharp.Training;

/// <summary>
/// What the trainer needs from a model: its parameters and gradients as arenas of named views (names and layouts
/// as in the checkpoint, so saving is writing the views), and one forward/backward over a micro-batch.
/// The engine implements it per architecture description; tests implement it with small hand-written models.
/// </summary>
public interface ITrainableModel : IDisposable
{
    /// <summary>config.json of the model (written into every saved folder).</summary>
    ModelConfig Config { get; }

    /// <summary>The parameters the optimizer updates; tied tensors appear once.</summary>
    TensorArena Parameters { get; }

    /// <summary>Gradients, laid out as <see cref="Parameters"/>; <see cref="Run"/> adds into them.</summary>
    TensorArena Gradients { get; }

    /// <summary>Logit dimension (the model's vocabulary).</summary>
    int VocabSize { get; }

    /// <summary>The longest sequence the model accepts (its max positions).</summary>
    int MaxPositions { get; }

    /// <summary>
    /// Runs the model over <paramref name="batch"/> and hands the logits of every position to
    /// <paramref name="loss"/> (<see cref="MicroBatchLoss.Apply"/>, any chunking). With <paramref name="backward"/>,
    /// the logits come back as dL/dlogits and the model adds dL/dθ into <see cref="Gradients"/>; without it nothing
    /// is kept (evaluation).
    /// </summary>
    void Run(MicroBatch batch, MicroBatchLoss loss, bool backward);
}
