using System.Collections.Concurrent;
using FuseSharp.Tokenization.Patterns;

namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Compiled split regexes, shared by all tokenizers that use the same pattern.</summary>
public static class FastSplitPatterns
{
    private static readonly ConcurrentDictionary<string, SplitPattern> Cache = new(StringComparer.Ordinal);

    /// <summary>The split pattern for an Oniguruma regex: a hand-written scanner for the well-known patterns, else the regex engine.</summary>
    public static SplitPattern ForRegex(string pattern) =>
        Cache.GetOrAdd(pattern, p => SplitPattern.Regex(WordScanners.For(p) ?? new TokenizerRegex(p)));
}
