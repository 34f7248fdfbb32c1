namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Removes white space at the start and/or end (HF <c>Strip</c>; fields <c>strip_left</c>, <c>strip_right</c>).</summary>
public sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public static StripNormalizer FromJson(JsonSection j) => new(j.GetBool("strip_left", true), j.GetBool("strip_right", true));

    public void Normalize(NormalizedString text) => text.Strip(left, right);
}
