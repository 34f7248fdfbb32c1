namespace FuseSharp.Tokenization.Normalizers;

/// <summary>The normalizers of <c>tokenizer.json</c>, by their <c>"type"</c> tag.</summary>
public static class NormalizerFactory
{
    private static readonly ComponentTable<INormalizer> Table = new("normalizer", new(StringComparer.Ordinal)
    {
        ["NFC"] = _ => new UnicodeNormalizer(Unicode.UnicodeForm.Nfc),
        ["NFD"] = _ => new UnicodeNormalizer(Unicode.UnicodeForm.Nfd),
        ["NFKC"] = _ => new UnicodeNormalizer(Unicode.UnicodeForm.Nfkc),
        ["NFKD"] = _ => new UnicodeNormalizer(Unicode.UnicodeForm.Nfkd),
        ["Lowercase"] = _ => new LowercaseNormalizer(),
        ["Strip"] = StripNormalizer.FromJson,
        ["StripAccents"] = _ => new StripAccentsNormalizer(),
        ["Replace"] = ReplaceNormalizer.FromJson,
        ["Prepend"] = PrependNormalizer.FromJson,
        ["Append"] = AppendNormalizer.FromJson,
        ["BertNormalizer"] = BertNormalizer.FromJson,
        ["Precompiled"] = PrecompiledNormalizer.FromJson,
        ["Nmt"] = _ => new NmtNormalizer(),
        ["ByteLevel"] = _ => new ByteLevelNormalizer(),
        ["Sequence"] = SequenceNormalizer.FromJson,
    });

    /// <summary>Builds the normalizer described by <paramref name="j"/>.</summary>
    /// <exception cref="TokenizerException">Unknown type or bad fields (the message names them).</exception>
    public static INormalizer Create(JsonSection j) => Table.Create(j);
}
