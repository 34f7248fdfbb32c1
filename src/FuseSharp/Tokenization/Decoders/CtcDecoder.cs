namespace FuseSharp.Tokenization.Decoders;

/// <summary>CTC decoding (HF <c>CTC</c>): collapses repeated pieces, drops the pad token, turns the word delimiter into a space.</summary>
public sealed class CtcDecoder(string padToken, string wordDelimiterToken, bool cleanup) : IDecoder
{
    public static CtcDecoder FromJson(JsonSection j) =>
        new(j.GetStringOrNull("pad_token") ?? "<pad>", j.GetStringOrNull("word_delimiter_token") ?? "|", j.GetBool("cleanup", true));

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            if (i > 0 && tokens[i] == tokens[i - 1]) continue;
            var t = tokens[i].Replace(padToken, "", StringComparison.Ordinal);
            if (cleanup) t = WordPieceDecoder.Cleanup(t).Replace(wordDelimiterToken, " ", StringComparison.Ordinal);
            if (t.Length > 0) result.Add(t);
        }
        return result;
    }
}
