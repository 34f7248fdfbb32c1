using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Removes combining marks (categories Mn, Mc, Me); meant to follow NFD/NFKD, as in HF.</summary>
public sealed class StripAccentsNormalizer : INormalizer
{
    public void Normalize(NormalizedString text) => text.Filter(cp => cp < 0x300 || !UnicodeChars.InCategories(cp, UnicodeChars.MarkMask));
}
