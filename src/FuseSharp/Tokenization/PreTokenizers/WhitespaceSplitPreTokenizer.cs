using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Splits on white space and drops it (HF <c>WhitespaceSplit</c>).</summary>
public sealed class WhitespaceSplitPreTokenizer : IPreTokenizer
{
    private static readonly SplitPattern Space = SplitPattern.Chars(UnicodeChars.IsWhiteSpace);

    public void PreTokenize(PreTokenizedString text) => text.Split(n => n.Split(Space, SplitBehavior.Removed));
}
