using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>BERT's pre-tokenizer: split on white space (removed), then isolate every punctuation character.</summary>
public sealed class BertPreTokenizer : IPreTokenizer
{
    private static readonly SplitPattern Space = SplitPattern.Chars(UnicodeChars.IsWhiteSpace);

    public void PreTokenize(PreTokenizedString text)
    {
        text.Split(n => n.Split(Space, SplitBehavior.Removed));
        text.Split(n => n.Split(PunctuationPreTokenizer.Punctuation, SplitBehavior.Isolated));
    }
}
