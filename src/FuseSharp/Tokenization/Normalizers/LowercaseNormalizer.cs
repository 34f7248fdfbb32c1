namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Lowercases every character with Rust's full lowercase mapping (no final-sigma context).</summary>
public sealed class LowercaseNormalizer : INormalizer
{
    public void Normalize(NormalizedString text) => text.Lowercase();
}
