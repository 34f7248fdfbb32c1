using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Normalizers;

/// <summary>NFC, NFD, NFKC or NFKD (one component, the form is configuration).</summary>
public sealed class UnicodeNormalizer(UnicodeForm form) : INormalizer
{
    public UnicodeForm Form { get; } = form;

    public void Normalize(NormalizedString text) => text.NormalizeUnicode(Form);
}
