namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Splits on one delimiter character, dropping it (HF <c>CharDelimiterSplit</c>).</summary>
public sealed class CharDelimiterSplitPreTokenizer(string delimiter) : IPreTokenizer
{
    private readonly SplitPattern pattern = SplitPattern.Literal(delimiter);

    public static CharDelimiterSplitPreTokenizer FromJson(JsonSection j) => new(j.GetChar("delimiter", " "));

    public void PreTokenize(PreTokenizedString text) => text.Split(n => n.Split(pattern, SplitBehavior.Removed));
}
