using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Splits on punctuation (ASCII punctuation and Unicode P*) with a delimiter behaviour (HF <c>Punctuation</c>).</summary>
public sealed class PunctuationPreTokenizer(SplitBehavior behavior) : IPreTokenizer
{
    internal static readonly SplitPattern Punctuation = SplitPattern.Chars(UnicodeChars.IsBertPunctuation);

    public static PunctuationPreTokenizer FromJson(JsonSection j) => new(PreTokenizerFactory.ParseBehavior(j, "behavior", SplitBehavior.Isolated));

    public void PreTokenize(PreTokenizedString text) => text.Split(n => n.Split(Punctuation, behavior));
}
