using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Isolates numeric characters (Nd/Nl/No), one by one or as runs (HF <c>Digits</c>).</summary>
public sealed class DigitsPreTokenizer(bool individualDigits) : IPreTokenizer
{
    private static readonly SplitPattern Numeric = SplitPattern.Chars(UnicodeChars.IsNumeric);

    public static DigitsPreTokenizer FromJson(JsonSection j) => new(j.GetBool("individual_digits", false));

    public void PreTokenize(PreTokenizedString text) =>
        text.Split(n => n.Split(Numeric, individualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous));
}
