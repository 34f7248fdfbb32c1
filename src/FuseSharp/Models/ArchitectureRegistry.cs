using FuseSharp.IO;
using FuseSharp.Models.Architectures;

namespace FuseSharp.Models;

/// <summary>The one table of supported architectures, looked up by config.json <c>architectures[0]</c> or <c>model_type</c>.</summary>
public static class ArchitectureRegistry
{
    /// <summary>Every supported family, one line each.</summary>
    public static IReadOnlyList<Architecture> All { get; } =
    [
        Llama.Definition,
        Mistral.Definition,
        Mixtral.Definition,
        Qwen2.Definition,
        Phi3.Definition,
        Gemma.Definition,
        InternLM2.Definition,
        Gpt2.Definition,
        GptNeoX.Definition,
        Mpt.Definition,
    ];

    /// <summary>The family named by <c>model_type</c> or by a class name, or null.</summary>
    public static Architecture? Find(string name) =>
        All.FirstOrDefault(a => string.Equals(a.ModelType, name, StringComparison.OrdinalIgnoreCase))
        ?? All.FirstOrDefault(a => a.ClassNames.Contains(name, StringComparer.Ordinal));

    /// <summary>The family of a config: its class name first (as transformers' auto classes), then its model_type.</summary>
    /// <exception cref="ModelConfigException">Neither names a supported family; the message lists the supported ones.</exception>
    public static Architecture Resolve(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var cls in config.Architectures)
            if (All.FirstOrDefault(a => a.ClassNames.Contains(cls, StringComparer.Ordinal)) is { } byClass) return byClass;
        if (config.ModelType is { } mt && All.FirstOrDefault(a => a.ModelType == mt) is { } byType) return byType;
        var what = config.Architectures.Count > 0 ? $"architecture '{string.Join(", ", config.Architectures)}'" : $"model_type '{config.ModelType ?? "(none)"}'";
        throw new ModelConfigException(config.Path, $"{what} is not supported",
            "supported: " + string.Join("; ", All.Select(a => $"{a.ModelType} ({string.Join(", ", a.ClassNames)})")));
    }

    /// <summary>The family for <c>init-model --arch NAME</c>.</summary>
    /// <exception cref="FuseSharpException">Unknown name; the message lists the supported ones.</exception>
    public static Architecture Get(string name) =>
        Find(name) ?? throw new FuseSharpException($"unknown architecture '{name}'", "supported: " + string.Join(", ", All.Select(a => a.ModelType)));
}
