using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization;

namespace FuseSharp.Merging.Tokenizer;

/// <summary>
/// The output tokenizer's vocabulary as mergekit builds it (<c>tokenizer/build.py</c>, spec §4.3): a starting
/// tokenizer (the base, stripped of ids &gt;= its <c>vocab_size</c>, or a named model's) plus tokens added with
/// transformers' <c>add_tokens</c> semantics (a content already present keeps its id; a new one gets the next id),
/// and the donor's tokenizer files rewritten to carry it.
/// </summary>
internal sealed class OutputVocabulary
{
    private readonly Dictionary<string, int> _tokens;
    private readonly List<AddedToken> _added = [];
    private readonly Vocabulary _start;

    public OutputVocabulary(Vocabulary start)
    {
        _start = start;
        _tokens = new Dictionary<string, int>(start.Tokens, StringComparer.Ordinal);
        Count = start.Count;
    }

    /// <summary>Largest id + 1.</summary>
    public int Count { get; private set; }

    /// <summary>The tokens added on top of the starting tokenizer, with their new ids.</summary>
    public IReadOnlyList<AddedToken> NewTokens => _added;

    public bool Contains(string token) => _tokens.ContainsKey(token);

    /// <summary>transformers' <c>add_tokens</c>: a token already in the vocabulary is left as it is.</summary>
    public void Add(AddedToken token)
    {
        if (token.Content.Length == 0 || _tokens.ContainsKey(token.Content)) return;
        _tokens[token.Content] = Count;
        _added.Add(token with { Id = Count });
        Count++;
    }

    /// <summary>A plain added token as <c>add_tokens("text")</c> creates it (normalized, not special).</summary>
    public static AddedToken Plain(string content) => new(0, content, Special: false, Normalized: true);

    public Vocabulary ToVocabulary() => new(_tokens, _start.Source, _start.Added.Concat(_added).ToList());

    /// <summary>
    /// mergekit's <c>build_union_tokenizer</c>: every model's non-added tokens below its <c>vocab_size</c>, in model
    /// order (base first), that the base lacks, as plain added tokens; then every model's added tokens below its
    /// <c>vocab_size</c> (the first definition of a content wins; a different later one is reported). Within a model
    /// tokens are taken by increasing id (mergekit iterates a hash map, whose order is not defined).
    /// </summary>
    public void AddUnion(IEnumerable<(string Name, Vocabulary Vocabulary, int Limit)> models, List<string> warnings)
    {
        var list = models.ToList();
        var plain = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        var addedOrder = new List<string>();
        foreach (var (name, vocab, limit) in list)
        {
            var addedContents = vocab.Added.Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
            foreach (var (tok, _) in vocab.Tokens.Where(p => p.Value < limit).OrderBy(p => p.Value))
                if (!addedContents.Contains(tok) && seen.Add(tok)) plain.Add(tok);
            foreach (var a in vocab.Added.Where(a => a.Id < limit))
            {
                if (added.TryGetValue(a.Content, out var first))
                {
                    if (first with { Id = 0 } != a with { Id = 0 })
                        warnings.Add($"tokenizer union: added token '{a.Content}' has different settings in {name}; the first definition is used");
                    continue;
                }
                added[a.Content] = a;
                addedOrder.Add(a.Content);
            }
        }
        foreach (var tok in plain)
            if (!added.ContainsKey(tok) && !_start.Tokens.ContainsKey(tok)) Add(Plain(tok));
        foreach (var content in addedOrder) Add(added[content]);
    }

    /// <summary>
    /// The donor's tokenizer files changed to this vocabulary: ids &gt;= <paramref name="strip"/> removed (tokens,
    /// added tokens and the merges that use them), the new tokens appended to <c>tokenizer.json</c>'s
    /// <c>added_tokens</c> and to <c>tokenizer_config.json</c>'s <c>added_tokens_decoder</c> (written when the donor has
    /// neither file, so that transformers sees them). Empty when nothing changes.
    /// </summary>
    public IReadOnlyDictionary<string, string> RewriteFiles(string donorFolder, int? strip)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        if (strip is null && _added.Count == 0) return files;
        var tjPath = Path.Combine(donorFolder, "tokenizer.json");
        var cfgPath = Path.Combine(donorFolder, "tokenizer_config.json");
        if (File.Exists(tjPath))
        {
            var root = Vocabulary.Parse(tjPath);
            if (strip is int s) StripTokenizerJson(root, s);
            if (_added.Count > 0)
            {
                if (root["added_tokens"] is not JsonArray list) root["added_tokens"] = list = [];
                foreach (var t in _added) list.Add(TokenJson(t, withId: true));
            }
            files["tokenizer.json"] = root.ToJsonString(Indented);
        }
        if (File.Exists(cfgPath) || (_added.Count > 0 && !File.Exists(tjPath)))
        {
            var cfg = File.Exists(cfgPath) ? Vocabulary.Parse(cfgPath) : [];
            if (cfg["added_tokens_decoder"] is not JsonObject decoder) cfg["added_tokens_decoder"] = decoder = [];
            if (strip is int s)
                foreach (var (key, _) in decoder.ToList())
                    if (int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && id >= s) decoder.Remove(key);
            foreach (var t in _added) decoder[t.Id.ToString(CultureInfo.InvariantCulture)] = TokenJson(t, withId: false);
            files["tokenizer_config.json"] = cfg.ToJsonString(Indented);
        }
        return files;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static JsonObject TokenJson(AddedToken t, bool withId)
    {
        var o = new JsonObject();
        if (withId) o["id"] = t.Id;
        o["content"] = t.Content;
        o["single_word"] = t.SingleWord;
        o["lstrip"] = t.LStrip;
        o["rstrip"] = t.RStrip;
        o["normalized"] = t.Normalized;
        o["special"] = t.Special;
        return o;
    }

    /// <summary>Removes ids &gt;= <paramref name="vocabSize"/> from a tokenizer.json (and BPE merges that use them).</summary>
    private static void StripTokenizerJson(JsonObject root, int vocabSize)
    {
        var removed = new HashSet<string>(StringComparer.Ordinal);
        if (root["added_tokens"] is JsonArray added)
        {
            for (int i = added.Count - 1; i >= 0; i--)
                if (added[i] is JsonObject o && o["id"]?.GetValue<int>() >= vocabSize)
                {
                    removed.Add(o["content"]?.GetValue<string>() ?? "");
                    added.RemoveAt(i);
                }
        }
        if (root["model"] is not JsonObject model) return;
        switch (model["vocab"])
        {
            case JsonObject v:
                foreach (var (k, id) in v.ToList())
                    if (id?.GetValue<int>() >= vocabSize)
                    {
                        removed.Add(k);
                        v.Remove(k);
                    }
                break;
            case JsonArray pieces: // Unigram: ids are positions
                while (pieces.Count > vocabSize) pieces.RemoveAt(pieces.Count - 1);
                break;
        }
        if (model["merges"] is JsonArray merges)
            for (int i = merges.Count - 1; i >= 0; i--)
            {
                var parts = merges[i] is JsonArray pair ? pair.Select(x => x!.GetValue<string>()).ToArray() : (merges[i]?.GetValue<string>() ?? "").Split(' ');
                if (parts.Any(removed.Contains)) merges.RemoveAt(i);
            }
    }
}
