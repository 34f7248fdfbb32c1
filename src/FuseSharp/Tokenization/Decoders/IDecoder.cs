namespace FuseSharp.Tokenization.Decoders;

/// <summary>
/// Last stage, the way back: turns token pieces into text (HF <c>Decoder</c>). Decoders chain: each maps the list
/// of pieces to a new list, and the text is their concatenation.
/// </summary>
public interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}
