namespace FuseSharp.Tokenization.Decoders;

/// <summary>Replaces a literal or regex pattern in every piece (HF <c>Replace</c>, e.g. '▁' → ' ').</summary>
public sealed class ReplaceDecoder(SplitPattern pattern, string content) : IDecoder
{
    public static ReplaceDecoder FromJson(JsonSection j) => new(SplitPattern.FromJson(j.Child("pattern")), j.GetString("content"));

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        foreach (var t in tokens)
        {
            var sb = new System.Text.StringBuilder(t.Length);
            foreach (var (s, e, isMatch) in pattern.FindMatches(t))
            {
                if (isMatch) sb.Append(content);
                else sb.Append(t, s, e - s);
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}
