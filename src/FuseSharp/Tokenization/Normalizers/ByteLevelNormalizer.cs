namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Rewrites every character as the GPT-2 byte-level characters of its UTF-8 bytes (HF <c>ByteLevel</c> normalizer).</summary>
public sealed class ByteLevelNormalizer : INormalizer
{
    public void Normalize(NormalizedString text) => ByteLevelAlphabet.EncodeInPlace(text);
}
