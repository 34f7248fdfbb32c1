using System.Text.RegularExpressions;

namespace FuseSharp.Merging.Planning;

/// <summary>A tensor name split around its layer index: <c>Prefix + index + Suffix</c>.</summary>
public readonly record struct LayerName(string Prefix, int Index, string Suffix)
{
    /// <summary>The same tensor in layer <paramref name="index"/>.</summary>
    public string WithIndex(int index) => $"{Prefix}{index}{Suffix}";
}

/// <summary>
/// What a tensor name says about its place in a decoder model, for architectures without a hand-written
/// description (mergekit's <c>architecture/auto.py</c> does the same inference): the layer index
/// (<c>model.layers.N.</c>, <c>transformer.h.N.</c>, <c>blocks.N.</c>, ...), whether it comes before the layers
/// (embeddings) or after (final norm, LM head), and whether it is an embedding matrix whose rows are tokens.
/// </summary>
public static partial class TensorNames
{
    [GeneratedRegex(@"^(?<prefix>(?:.*\.)?(?:layers|layer|h|blocks|block|transformer_blocks)\.)(?<index>\d+)(?<suffix>\..+)$", RegexOptions.CultureInvariant)]
    private static partial Regex LayerPattern();

    private static readonly string[] InputEmbeddingNames =
        ["embed_tokens.weight", "wte.weight", "word_embeddings.weight", "embed_in.weight", "tok_embeddings.weight", "shared.weight"];

    private static readonly string[] OutputEmbeddingNames = ["lm_head.weight", "embed_out.weight"];

    /// <summary>Splits a layer tensor's name, or returns null for tensors outside the layers.</summary>
    public static LayerName? ParseLayer(string name)
    {
        var m = LayerPattern().Match(name);
        if (!m.Success || !int.TryParse(m.Groups["index"].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
            return null;
        return new LayerName(m.Groups["prefix"].Value, index, m.Groups["suffix"].Value);
    }

    /// <summary>An input embedding (rows are token ids the model looks up).</summary>
    public static bool IsInputEmbedding(string name) => EndsWithComponent(name, InputEmbeddingNames);

    /// <summary>An LM head (rows are output tokens).</summary>
    public static bool IsOutputEmbedding(string name) => EndsWithComponent(name, OutputEmbeddingNames);

    public static bool IsEmbedding(string name) => IsInputEmbedding(name) || IsOutputEmbedding(name);

    /// <summary>Non-layer tensors before the layers: embeddings of tokens, positions and token types, and their norms.</summary>
    public static bool IsPreLayer(string name) =>
        !IsOutputEmbedding(name) && (name.Contains("embed", StringComparison.Ordinal) || EndsWithComponent(name, ["wte.weight", "wpe.weight"])
            || name.Contains(".wte.", StringComparison.Ordinal) || name.Contains(".wpe.", StringComparison.Ordinal));

    private static bool EndsWithComponent(string name, IReadOnlyList<string> suffixes)
    {
        foreach (var s in suffixes)
            if (name == s || name.EndsWith("." + s, StringComparison.Ordinal)) return true;
        return false;
    }
}
