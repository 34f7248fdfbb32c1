namespace FuseSharp.Tokenization.Decoders;

/// <summary>Joins all pieces into one (HF <c>Fuse</c>).</summary>
public sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}
