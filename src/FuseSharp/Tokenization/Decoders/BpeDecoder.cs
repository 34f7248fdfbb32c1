namespace FuseSharp.Tokenization.Decoders;

/// <summary>Replaces the end-of-word suffix ("&lt;/w&gt;") by a space, except in the last piece (HF <c>BPEDecoder</c>).</summary>
public sealed class BpeDecoder(string suffix) : IDecoder
{
    public static BpeDecoder FromJson(JsonSection j) => new(j.GetStringOrNull("suffix") ?? "</w>");

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
            result.Add(suffix.Length == 0 ? tokens[i] : tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal));
        return result;
    }
}
