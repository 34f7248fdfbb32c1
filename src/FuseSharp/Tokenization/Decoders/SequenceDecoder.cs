namespace FuseSharp.Tokenization.Decoders;

/// <summary>Applies decoders in order, each on the pieces the previous one produced.</summary>
public sealed class SequenceDecoder(IReadOnlyList<IDecoder> decoders) : IDecoder
{
    public IReadOnlyList<IDecoder> Decoders { get; } = decoders;

    public static SequenceDecoder FromJson(JsonSection j) => new(j.Child("decoders").Items().Select(DecoderFactory.Create).ToList());

    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var d in Decoders) tokens = d.DecodeChain(tokens);
        return tokens;
    }
}
