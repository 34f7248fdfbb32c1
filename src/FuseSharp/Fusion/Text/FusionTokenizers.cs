using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization;

namespace FuseSharp.Fusion.Text;

/// <summary>Loading tokenizers for the fuse stages: the tokenizer, its vocabulary view (with the marker, or an override) and per-id decoding.</summary>
public static class FusionTokenizers
{
    /// <summary>A tokenizer from a folder, tokenizer.json, tokenizer.model or vocab.json.</summary>
    public static ITokenizer Load(string path) => TokenizerLoader.Load(path);

    /// <summary>The vocabulary as the vocabulary maps and alignment see it.</summary>
    public static TokenVocabulary Vocabulary(ITokenizer tokenizer, string path, string? marker) =>
        TokenVocabulary.FromTokenizer(tokenizer, marker, name: path, tokenizerClass: TokenizerClass(path));

    /// <summary>What <see cref="AlignStage"/> needs of one side's tokenizer.</summary>
    public static AlignTokenizer ForAlign(string path, string? marker)
    {
        var tok = Load(path);
        var vocab = Vocabulary(tok, path, marker);
        return new AlignTokenizer(vocab, ReferenceSequences.PerTokenDecoder(tok, vocab, CleanUpSpaces(path)));
    }

    /// <summary><c>tokenizer_class</c> from tokenizer_config.json next to the tokenizer, when there is one.</summary>
    public static string? TokenizerClass(string path) => Config(path)?.TokenizerClass;

    /// <summary><c>clean_up_tokenization_spaces</c> from tokenizer_config.json, when it says.</summary>
    public static bool? CleanUpSpaces(string path) =>
        Config(path)?.Raw["clean_up_tokenization_spaces"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out bool b) ? b : null;

    private static TokenizerConfig? Config(string path)
    {
        var folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        return TokenizerConfig.Exists(folder) ? TokenizerConfig.Load(folder) : null;
    }
}
