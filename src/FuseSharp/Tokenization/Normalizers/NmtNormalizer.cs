namespace FuseSharp.Tokenization.Normalizers;

/// <summary>
/// SentencePiece's NMT rules (HF <c>Nmt</c>): drops C0 controls other than tab/newlines and DEL/0x8F/0x9F, and maps
/// tab, newlines, U+1680, U+200B–U+200F, U+2028/9, U+2581, U+FEFF and U+FFFD to a space.
/// </summary>
public sealed class NmtNormalizer : INormalizer
{
    public void Normalize(NormalizedString text)
    {
        text.Filter(cp => !(cp is (>= 0x01 and <= 0x08) or 0x0B or (>= 0x0E and <= 0x1F) or 0x7F or 0x8F or 0x9F));
        text.MapCodePoints(cp => cp is 0x09 or 0x0A or 0x0C or 0x0D or 0x1680 or (>= 0x200B and <= 0x200F) or 0x2028 or 0x2029 or 0x2581 or 0xFEFF or 0xFFFD ? " " : null);
    }
}
