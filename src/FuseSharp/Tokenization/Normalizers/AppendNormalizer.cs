namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Appends a string to non-empty text (HF <c>Append</c>).</summary>
public sealed class AppendNormalizer(string append) : INormalizer
{
    public static AppendNormalizer FromJson(JsonSection j) => new(j.GetString("append"));

    public void Normalize(NormalizedString text) => text.Append(append);
}
