namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>
/// Byte-level offset trimming (HF <c>ByteLevel</c> post-processor): with <c>trim_offsets</c>, the offsets of a token
/// exclude its leading/trailing spaces ('Ġ'), except the single prefix space that <c>add_prefix_space</c> inserted.
/// </summary>
public sealed class ByteLevelProcessor(bool addPrefixSpace, bool trimOffsets) : IPostProcessor
{
    public static ByteLevelProcessor FromJson(JsonSection j) => new(j.GetBool("add_prefix_space", true), j.GetBool("trim_offsets", true));

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        if (trimOffsets) TrimOffsets(encoding, addPrefixSpace);
    }

    /// <summary>HF <c>process_offsets</c>.</summary>
    internal static void TrimOffsets(EncodingBuilder encoding, bool addPrefixSpace)
    {
        for (int i = 0; i < encoding.Count; i++)
        {
            var token = encoding.IdToToken(encoding.Ids[i]);
            if (token is null) continue;
            static bool IsSpace(char c) => c == 'Ġ' || Unicode.UnicodeChars.IsWhiteSpace(c);
            int leading = 0, trailing = 0;
            while (leading < token.Length && IsSpace(token[leading])) leading++;
            while (trailing < token.Length && IsSpace(token[token.Length - 1 - trailing])) trailing++;
            if (leading == 0 && trailing == 0) continue;
            var (s, e) = encoding.Offsets[i];
            if (leading > 0)
            {
                bool isFirst = i == 0 || s == 0;
                if (isFirst && addPrefixSpace && leading == 1) leading = 0;
                s = Math.Min(s + leading, e);
            }
            if (trailing > 0 && e >= trailing) e = Math.Max(e - trailing, s);
            encoding.Offsets[i] = (s, e);
        }
    }
}
