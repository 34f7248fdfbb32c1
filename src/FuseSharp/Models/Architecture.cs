using FuseSharp.IO;

namespace FuseSharp.Models;

/// <summary>
/// One model family as data: the config.json mapping (<see cref="Configure"/>), the checkpoint's weight names
/// (<see cref="Names"/>) and, through the spec it produces, the block made of shared pieces. Adding a family is
/// one file in <c>Models/Architectures/</c> plus one line in <see cref="ArchitectureRegistry"/>
/// (see docs/adding-an-architecture.md).
/// </summary>
public sealed class Architecture
{
    /// <summary>config.json <c>model_type</c>, also the name <c>fusesharp init-model --arch</c> takes.</summary>
    public required string ModelType { get; init; }

    /// <summary>config.json <c>architectures</c> entries this family serves; the first is written by init-model.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary>One line for listings ("Llama 2/3, OpenLLaMA, SOLAR, ...").</summary>
    public required string Description { get; init; }

    public required WeightNames Names { get; init; }

    /// <summary>Reads config.json into a spec (defaults as the transformers config class has them).</summary>
    public required Func<ConfigReader, TransformerSpec> Configure { get; init; }

    /// <summary>Resolves and validates the spec of a config.</summary>
    /// <exception cref="ModelConfigException">A required field is missing, a value is invalid or a feature unsupported.</exception>
    public TransformerSpec Resolve(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var spec = Configure(new ConfigReader(config));
        try
        {
            spec.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ModelConfigException(config.Path, e.Message, "the config.json is inconsistent; compare it with the original model's config");
        }
        return spec;
    }

    /// <summary>The tensors a checkpoint of this spec holds.</summary>
    public IReadOnlyList<ParameterInfo> Parameters(TransformerSpec spec) => ParameterLayout.Build(spec, Names);

    public override string ToString() => ModelType;
}
