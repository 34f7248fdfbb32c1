using FuseSharp.IO;
using FuseSharp.Merging.Config;

namespace FuseSharp.Merging.Planning;

/// <summary>
/// One model referenced by a merge, opened for planning: its folder, config.json, safetensors headers (no
/// weights are read) and the tensors grouped into pre-layer, per-layer and post-layer sets.
/// </summary>
public sealed class InputModel : IDisposable
{
    private readonly Dictionary<int, List<(string Name, LayerName Layer)>> _layers = [];

    private InputModel(int index, ModelReference reference, string path, ModelFolder folder)
    {
        Index = index;
        Reference = reference;
        Path = path;
        Folder = folder;
        foreach (var t in Weights.Tensors)
        {
            if (TensorNames.ParseLayer(t.Name) is { } layer)
            {
                if (!_layers.TryGetValue(layer.Index, out var list)) _layers[layer.Index] = list = [];
                list.Add((t.Name, layer));
            }
            else if (TensorNames.IsPreLayer(t.Name)) PreLayer.Add(t.Name);
            else PostLayer.Add(t.Name);
        }
        LayerCount = _layers.Count == 0 ? 0 : _layers.Keys.Max() + 1;
    }

    /// <summary>Position among the config's referenced models (the model index of the random streams).</summary>
    public int Index { get; }

    public ModelReference Reference { get; }

    /// <summary>The resolved folder.</summary>
    public string Path { get; }

    public ModelFolder Folder { get; }

    public ModelConfig? Config => Folder.Config;

    public SafetensorsModel Weights => Folder.Weights;

    /// <summary>The name used in messages and reports: the reference as written.</summary>
    public string Name => Reference.Text;

    /// <summary>Layers found in the tensor names (max index + 1).</summary>
    public int LayerCount { get; }

    public List<string> PreLayer { get; } = [];

    public List<string> PostLayer { get; } = [];

    /// <summary>Tensors of layer <paramref name="index"/> in file order, or an empty list.</summary>
    public IReadOnlyList<(string Name, LayerName Layer)> Layer(int index) => _layers.TryGetValue(index, out var l) ? l : [];

    /// <summary>Opens a resolved model folder (headers only).</summary>
    /// <exception cref="FuseSharpException">No config.json, no safetensors weights, or an invalid file.</exception>
    public static InputModel Open(int index, ModelReference reference, string path)
    {
        var folder = ModelFolder.Open(path, requireConfig: true);
        try
        {
            _ = folder.Weights;
            return new InputModel(index, reference, path, folder);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    public void Dispose() => Folder.Dispose();
}
