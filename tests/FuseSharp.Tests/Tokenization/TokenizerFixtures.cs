using System.Collections.Concurrent;
using System.Text.Json;
using FuseSharp.Tokenization;

namespace FuseSharp.Tests.Tokenization;

/// <summary>One line of Fixtures/tokenizers/cases.jsonl.</summary>
public sealed record TokenizerCase(string TokenizerPath, string Text, bool AddSpecialTokens, int[] Ids, string Decoded, string? TextId, int Line);

/// <summary>The tokenizer fixtures (copied from ../shared/fixtures/tokenizers with their README and SOURCES notes) and their cases.</summary>
public static class TokenizerFixtures
{
    private static readonly ConcurrentDictionary<string, ITokenizer> Cache = new();
    private static readonly Lazy<List<TokenizerCase>> AllCases = new(ReadCases);

    public static string Root => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers");

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    public static IReadOnlyList<TokenizerCase> Cases => AllCases.Value;

    /// <summary>
    /// The tokenizer for a fixture path with the semantics its file type has in the README: tokenizer.json exactly as
    /// the Rust library loads it (tokenizer_config.json not consulted); the other formats with their folder's config.
    /// </summary>
    public static ITokenizer Load(string relative) => Cache.GetOrAdd(relative, r =>
        TokenizerLoader.Load(PathOf(r), new TokenizerLoadOptions { ApplyTokenizerConfig = !r.EndsWith("tokenizer.json", StringComparison.Ordinal) }));

    private static readonly ConcurrentDictionary<string, ITokenizer> ConfiguredCache = new();

    /// <summary>The tokenizer at a fixture path with its folder's tokenizer_config.json applied (as TokenizerLoader does by default).</summary>
    public static ITokenizer LoadConfigured(string relative) => ConfiguredCache.GetOrAdd(relative, r => TokenizerLoader.Load(PathOf(r)));

    private static List<TokenizerCase> ReadCases()
    {
        var result = new List<TokenizerCase>();
        int line = 0;
        foreach (var l in File.ReadLines(PathOf("cases.jsonl")))
        {
            line++;
            if (l.Length == 0) continue;
            using var doc = JsonDocument.Parse(l);
            var r = doc.RootElement;
            result.Add(new TokenizerCase(
                r.GetProperty("tokenizer_path").GetString()!,
                r.GetProperty("text").GetString()!,
                r.GetProperty("add_special_tokens").GetBoolean(),
                r.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                r.GetProperty("decoded").GetString()!,
                r.TryGetProperty("text_id", out var t) ? t.GetString() : null,
                line));
        }
        return result;
    }
}
