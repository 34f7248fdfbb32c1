namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Second stage: cuts the normalized text into words (and may rewrite them, e.g. byte-level) (HF <c>PreTokenizer</c>).</summary>
public interface IPreTokenizer
{
    void PreTokenize(PreTokenizedString text);
}
