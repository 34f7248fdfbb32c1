using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization.Decoders;

/// <summary>Replaces '▁' by ' '; in the first token the replacement characters are dropped unless the prepend scheme is "never" (HF <c>Metaspace</c>).</summary>
public sealed class MetaspaceDecoder(string replacement, PrependScheme scheme) : IDecoder
{
    public static MetaspaceDecoder FromJson(JsonSection j)
    {
        var (r, s, _) = MetaspacePreTokenizer.ReadFields(j);
        return new(r, s);
    }

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
            result.Add(tokens[i].Replace(replacement, i == 0 && scheme != PrependScheme.Never ? "" : " ", StringComparison.Ordinal));
        return result;
    }
}
