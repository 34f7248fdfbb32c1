namespace FuseSharp.Tokenization.Normalizers;

/// <summary>First stage of the pipeline: edits the text in place, keeping the alignment to the original (HF <c>Normalizer</c>).</summary>
public interface INormalizer
{
    void Normalize(NormalizedString text);
}
