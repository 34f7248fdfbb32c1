using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Normalizers;

/// <summary>
/// BERT's normalizer: optional clean-up of control characters (white space → ' '), spaces around CJK ideographs,
/// accent stripping (NFD then drop marks; defaults to <c>lowercase</c>) and lowercasing.
/// </summary>
public sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase) : INormalizer
{
    public static BertNormalizer FromJson(JsonSection j) =>
        new(j.GetBool("clean_text", true), j.GetBool("handle_chinese_chars", true), j.GetBoolOrNull("strip_accents"), j.GetBool("lowercase", true));

    public void Normalize(NormalizedString text)
    {
        if (cleanText)
        {
            // HF is_control: \t \n \r count as white space; every other C* category is removed, as are NUL and U+FFFD.
            text.Filter(cp => !(cp == 0 || cp == 0xFFFD || (cp is not ('\t' or '\n' or '\r') && UnicodeChars.InCategories(cp, UnicodeChars.OtherMask))));
            text.MapCodePoints(cp => cp != ' ' && UnicodeChars.IsWhiteSpace(cp) ? " " : null);
        }
        if (handleChineseChars)
            text.MapCodePoints(cp => UnicodeChars.IsChineseChar(cp) ? " " + char.ConvertFromUtf32(cp) + " " : null);
        if (stripAccents ?? lowercase)
        {
            text.NormalizeUnicode(UnicodeForm.Nfd);
            text.Filter(cp => cp < 0x300 || !UnicodeChars.InCategories(cp, UnicodeChars.MarkMask));
        }
        if (lowercase) text.Lowercase();
    }
}
