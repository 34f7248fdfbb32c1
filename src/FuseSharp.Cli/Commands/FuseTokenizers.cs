using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;
using FuseSharp.Tokenization;

namespace FuseSharp.Cli.Commands;

/// <summary>Loading tokenizers for the fuse stages (the library's <see cref="FusionTokenizers"/>, shared with <c>fuse run</c>).</summary>
internal static class FuseTokenizers
{
    public static ITokenizer Load(string path) => FusionTokenizers.Load(path);

    public static TokenVocabulary Vocabulary(ITokenizer tokenizer, string path, string? marker) => FusionTokenizers.Vocabulary(tokenizer, path, marker);

    public static AlignTokenizer ForAlign(string path, string? marker) => FusionTokenizers.ForAlign(path, marker);

    public static bool? CleanUpSpaces(string path) => FusionTokenizers.CleanUpSpaces(path);
}
