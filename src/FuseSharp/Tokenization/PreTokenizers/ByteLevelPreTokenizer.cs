using FuseSharp.Tokenization.Patterns;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>
/// GPT-2's byte-level pre-tokenizer: optionally prepends a space to every piece, splits with the GPT-2 regex
/// (isolated), then rewrites each word into the byte-level alphabet (<see cref="ByteLevelAlphabet"/>).
/// </summary>
public sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    /// <summary>The GPT-2 split pattern (Oniguruma).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly SplitPattern Gpt2 = FastSplitPatterns.ForRegex(Gpt2Pattern);

    public bool AddPrefixSpace { get; } = addPrefixSpace;

    public bool UseRegex { get; } = useRegex;

    public static ByteLevelPreTokenizer FromJson(JsonSection j) => new(j.GetBool("add_prefix_space", true), j.GetBool("use_regex", true));

    public void PreTokenize(PreTokenizedString text)
    {
        text.Split(n =>
        {
            if (AddPrefixSpace && !n.Normalized.StartsWith(' ')) n.Prepend(" ");
            return UseRegex ? n.Split(Gpt2, SplitBehavior.Isolated) : [n];
        });
        text.Normalize(ByteLevelAlphabet.EncodeInPlace);
    }
}
