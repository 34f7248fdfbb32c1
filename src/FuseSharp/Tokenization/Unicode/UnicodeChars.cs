using System.Globalization;
using System.Text;

namespace FuseSharp.Tokenization.Unicode;

/// <summary>
/// Character predicates with the exact definitions the reference tokenizers use (Rust <c>char</c> methods, the Rust
/// <c>regex</c> crate, Oniguruma), on code points. General categories come from .NET's tables, which work in
/// invariant-globalization mode.
/// </summary>
public static class UnicodeChars
{
    /// <summary>General category of a code point.</summary>
    public static UnicodeCategory Category(int cp) => cp < 0x80 ? CharUnicodeInfo.GetUnicodeCategory((char)cp) : CharUnicodeInfo.GetUnicodeCategory(cp);

    /// <summary>Bit for <paramref name="c"/> in a category mask.</summary>
    public static uint Bit(UnicodeCategory c) => 1u << (int)c;

    public static readonly uint LetterMask = Bit(UnicodeCategory.UppercaseLetter) | Bit(UnicodeCategory.LowercaseLetter) | Bit(UnicodeCategory.TitlecaseLetter)
        | Bit(UnicodeCategory.ModifierLetter) | Bit(UnicodeCategory.OtherLetter);

    public static readonly uint MarkMask = Bit(UnicodeCategory.NonSpacingMark) | Bit(UnicodeCategory.SpacingCombiningMark) | Bit(UnicodeCategory.EnclosingMark);

    public static readonly uint NumberMask = Bit(UnicodeCategory.DecimalDigitNumber) | Bit(UnicodeCategory.LetterNumber) | Bit(UnicodeCategory.OtherNumber);

    public static readonly uint PunctuationMask = Bit(UnicodeCategory.ConnectorPunctuation) | Bit(UnicodeCategory.DashPunctuation) | Bit(UnicodeCategory.OpenPunctuation)
        | Bit(UnicodeCategory.ClosePunctuation) | Bit(UnicodeCategory.InitialQuotePunctuation) | Bit(UnicodeCategory.FinalQuotePunctuation) | Bit(UnicodeCategory.OtherPunctuation);

    public static readonly uint SymbolMask = Bit(UnicodeCategory.MathSymbol) | Bit(UnicodeCategory.CurrencySymbol) | Bit(UnicodeCategory.ModifierSymbol) | Bit(UnicodeCategory.OtherSymbol);

    public static readonly uint SeparatorMask = Bit(UnicodeCategory.SpaceSeparator) | Bit(UnicodeCategory.LineSeparator) | Bit(UnicodeCategory.ParagraphSeparator);

    public static readonly uint OtherMask = Bit(UnicodeCategory.Control) | Bit(UnicodeCategory.Format) | Bit(UnicodeCategory.Surrogate)
        | Bit(UnicodeCategory.PrivateUse) | Bit(UnicodeCategory.OtherNotAssigned);

    /// <summary>True when the category of <paramref name="cp"/> is in <paramref name="mask"/>.</summary>
    public static bool InCategories(int cp, uint mask) => (mask & Bit(Category(cp))) != 0;

    /// <summary>
    /// The Unicode White_Space property (Rust <c>char::is_whitespace</c>, the <c>regex</c> crate's and Oniguruma's
    /// <c>\s</c>): U+0009–U+000D, U+0085 and the separators Zs/Zl/Zp. Not U+200B or U+FEFF.
    /// </summary>
    public static bool IsWhiteSpace(int cp) => cp < 0x80
        ? cp == ' ' || (cp >= 9 && cp <= 13)
        : cp == 0x85 || InCategories(cp, SeparatorMask);

    /// <summary>Rust <c>char::is_numeric</c>: categories Nd, Nl, No.</summary>
    public static bool IsNumeric(int cp) => cp < 0x80 ? cp >= '0' && cp <= '9' : InCategories(cp, NumberMask);

    /// <summary>Oniguruma's Unicode <c>\w</c>: Letter, Mark, Decimal_Number, Connector_Punctuation.</summary>
    public static bool IsOnigWord(int cp) => cp < 0x80
        ? char.IsAsciiLetterOrDigit((char)cp) || cp == '_'
        : InCategories(cp, LetterMask | MarkMask | Bit(UnicodeCategory.DecimalDigitNumber) | Bit(UnicodeCategory.ConnectorPunctuation));

    /// <summary>
    /// The Rust <c>regex</c> crate's <c>\w</c> (UTS #18 word): Alphabetic, Mark, Decimal_Number, Connector_Punctuation,
    /// Join_Control. Alphabetic = letters, Nl and Other_Alphabetic; the Other_Alphabetic code points outside the
    /// mark categories are the circled and squared Latin letters listed here.
    /// </summary>
    public static bool IsRustWord(int cp)
    {
        if (cp < 0x80) return char.IsAsciiLetterOrDigit((char)cp) || cp == '_';
        if (cp is 0x200C or 0x200D) return true;
        if (cp is (>= 0x24B6 and <= 0x24E9) or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189)) return true;
        return InCategories(cp, LetterMask | MarkMask | Bit(UnicodeCategory.DecimalDigitNumber) | Bit(UnicodeCategory.LetterNumber) | Bit(UnicodeCategory.ConnectorPunctuation));
    }

    /// <summary>BERT's punctuation: ASCII punctuation or any Unicode P* category (HF <c>is_bert_punc</c>).</summary>
    public static bool IsBertPunctuation(int cp) => cp < 0x80
        ? (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)
        : InCategories(cp, PunctuationMask);

    /// <summary>The CJK ideograph blocks BERT isolates (HF <c>is_chinese_char</c>).</summary>
    public static bool IsChineseChar(int cp) => cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
        or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);

    /// <summary>
    /// Appends the lowercase of <paramref name="cp"/> as Rust's <c>char::to_lowercase</c> does: the full (possibly
    /// multi-character) mapping, without context (no final-sigma rule). The only unconditional multi-character lowercase
    /// mapping in SpecialCasing.txt is U+0130 → "i̇".
    /// </summary>
    public static void AppendLower(StringBuilder sb, int cp)
    {
        if (cp == 0x130)
        {
            sb.Append('i').Append('\u0307');
            return;
        }
        UnicodeNormalization.AppendCodePoint(sb, Rune.IsValid(cp) ? Rune.ToLowerInvariant(new Rune(cp)).Value : cp);
    }

    /// <summary>Reads the code point at <paramref name="i"/> without advancing; lone surrogates are returned as themselves.</summary>
    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int length)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        length = 1;
        return c;
    }

    /// <summary>Number of code points in <paramref name="s"/> (a lone surrogate counts as one).</summary>
    public static int CodePointCount(ReadOnlySpan<char> s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }
}
