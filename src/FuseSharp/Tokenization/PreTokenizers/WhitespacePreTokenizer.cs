using FuseSharp.Tokenization.Patterns;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Splits into runs of word characters and runs of other non-space characters, dropping white space (HF <c>Whitespace</c>: <c>\w+|[^\w\s]+</c> with the Rust regex crate's classes).</summary>
public sealed class WhitespacePreTokenizer : IPreTokenizer
{
    private static readonly SplitPattern Words = SplitPattern.Regex(new TokenizerRegex(@"\w+|[^\w\s]+", RegexDialect.Rust));

    public void PreTokenize(PreTokenizedString text) => text.Split(n => n.Split(Words, SplitBehavior.Removed, invert: true));
}
