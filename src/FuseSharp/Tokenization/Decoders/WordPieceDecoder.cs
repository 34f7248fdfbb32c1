namespace FuseSharp.Tokenization.Decoders;

/// <summary>
/// WordPiece decoding (HF <c>WordPiece</c>): a piece starting with the prefix ("##") is glued to the previous one,
/// others get a leading space; <c>cleanup</c> removes spaces before punctuation and contractions.
/// </summary>
public sealed class WordPieceDecoder(string prefix, bool cleanup) : IDecoder
{
    public static WordPieceDecoder FromJson(JsonSection j) => new(j.GetStringOrNull("prefix") ?? "##", j.GetBool("cleanup", true));

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (i != 0) t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
            result.Add(cleanup ? Cleanup(t) : t);
        }
        return result;
    }

    /// <summary>HF's <c>cleanup</c> of decoded WordPiece/CTC text.</summary>
    public static string Cleanup(string s) => s
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" do not", " don't", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
}
