using FuseSharp.Training;

namespace FuseSharp.Cli;

/// <summary>The training engine's model loader, the one place the CLI gets a trainable model from a folder.</summary>
internal static class TrainableModels
{
    /// <exception cref="TrainingException">This build has no training engine for the engine's architectures yet.</exception>
    public static ITrainableModel Load(string folder) =>
        throw new TrainingException($"{folder}: this build has no model backward for the engine's architectures yet, so it cannot train",
            "use a build that includes the training engine (issue 6)");
}
