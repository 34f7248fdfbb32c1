namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>The pre-tokenizers of <c>tokenizer.json</c>, by their <c>"type"</c> tag.</summary>
public static class PreTokenizerFactory
{
    private static readonly ComponentTable<IPreTokenizer> Table = new("pre-tokenizer", new(StringComparer.Ordinal)
    {
        ["ByteLevel"] = ByteLevelPreTokenizer.FromJson,
        ["Split"] = SplitPreTokenizer.FromJson,
        ["Metaspace"] = MetaspacePreTokenizer.FromJson,
        ["Whitespace"] = _ => new WhitespacePreTokenizer(),
        ["WhitespaceSplit"] = _ => new WhitespaceSplitPreTokenizer(),
        ["Digits"] = DigitsPreTokenizer.FromJson,
        ["Punctuation"] = PunctuationPreTokenizer.FromJson,
        ["BertPreTokenizer"] = _ => new BertPreTokenizer(),
        ["CharDelimiterSplit"] = CharDelimiterSplitPreTokenizer.FromJson,
        ["Sequence"] = SequencePreTokenizer.FromJson,
    });

    /// <summary>Builds the pre-tokenizer described by <paramref name="j"/>.</summary>
    /// <exception cref="TokenizerException">Unknown type or bad fields (the message names them).</exception>
    public static IPreTokenizer Create(JsonSection j) => Table.Create(j);

    /// <summary>Reads HF's <c>SplitDelimiterBehavior</c> names ("removed", "isolated", "merged_with_previous", ...).</summary>
    public static SplitBehavior ParseBehavior(JsonSection j, string key, SplitBehavior defaultValue)
    {
        if (!j.Has(key)) return defaultValue;
        var s = j.GetString(key);
        return s.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "removed" => SplitBehavior.Removed,
            "isolated" => SplitBehavior.Isolated,
            "mergedwithprevious" => SplitBehavior.MergedWithPrevious,
            "mergedwithnext" => SplitBehavior.MergedWithNext,
            "contiguous" => SplitBehavior.Contiguous,
            _ => throw j.Error($"unknown split behavior '{s}'", "use removed, isolated, merged_with_previous, merged_with_next or contiguous"),
        };
    }
}
