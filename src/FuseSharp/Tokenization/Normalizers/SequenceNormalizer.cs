namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Applies normalizers in order.</summary>
public sealed class SequenceNormalizer(IReadOnlyList<INormalizer> normalizers) : INormalizer
{
    public IReadOnlyList<INormalizer> Normalizers { get; } = normalizers;

    public static SequenceNormalizer FromJson(JsonSection j) => new(j.Child("normalizers").Items().Select(NormalizerFactory.Create).ToList());

    public void Normalize(NormalizedString text)
    {
        foreach (var n in Normalizers) n.Normalize(text);
    }
}
