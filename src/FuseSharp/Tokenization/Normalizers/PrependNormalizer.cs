namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Prepends a string to non-empty text (HF <c>Prepend</c>, e.g. the "▁" of Llama-style tokenizer.json files).</summary>
public sealed class PrependNormalizer(string prepend) : INormalizer
{
    public string Prepend { get; } = prepend;

    public static PrependNormalizer FromJson(JsonSection j) => new(j.GetString("prepend"));

    public void Normalize(NormalizedString text) => text.Prepend(Prepend);
}
