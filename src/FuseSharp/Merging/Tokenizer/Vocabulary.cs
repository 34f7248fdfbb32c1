using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization;

namespace FuseSharp.Merging.Tokenizer;

/// <summary>
/// A model's token → id map and its added tokens, as far as merging needs them (aligning embedding rows by token,
/// building a union vocabulary). Read straight from <c>tokenizer.json</c> (BPE/WordPiece/WordLevel vocab objects,
/// Unigram piece lists, <c>added_tokens</c>) or <c>vocab.json</c> + <c>added_tokens.json</c>, plus the
/// <c>added_tokens_decoder</c> of <c>tokenizer_config.json</c> (transformers adds those too); any other format
/// (SentencePiece <c>.model</c>, tiktoken, GGUF) through <see cref="TokenizerLoader"/>.
/// </summary>
public sealed class Vocabulary
{
    public Vocabulary(IReadOnlyDictionary<string, int> tokens, string source, IReadOnlyList<AddedToken>? added = null)
    {
        Tokens = tokens;
        Source = source;
        Added = added ?? [];
        Count = tokens.Count == 0 ? 0 : tokens.Values.Max() + 1;
    }

    /// <summary>Token → id (base vocabulary and added tokens).</summary>
    public IReadOnlyDictionary<string, int> Tokens { get; }

    /// <summary>The added tokens (HF <c>added_tokens_decoder</c>), by increasing id.</summary>
    public IReadOnlyList<AddedToken> Added { get; }

    /// <summary>Largest id + 1.</summary>
    public int Count { get; }

    /// <summary>Where it was read from.</summary>
    public string Source { get; }

    /// <summary>The vocabulary without ids &gt;= <paramref name="limit"/> (mergekit's "stripped" tokenizer: padding ids without embeddings).</summary>
    public Vocabulary Below(int limit) =>
        new(Tokens.Where(p => p.Value < limit).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal), Source, Added.Where(a => a.Id < limit).ToList());

    /// <summary>The vocabulary of a model folder, or null when no tokenizer is there.</summary>
    /// <exception cref="FuseSharpException">A tokenizer file exists but is malformed.</exception>
    public static Vocabulary? Read(string folder)
    {
        var tj = Path.Combine(folder, "tokenizer.json");
        var vj = Path.Combine(folder, "vocab.json");
        Vocabulary? v;
        if (File.Exists(tj)) v = FromTokenizerJson(tj);
        else if (File.Exists(vj)) v = FromVocabJson(folder, vj);
        else
        {
            try
            {
                TokenizerLoader.Detect(folder);
            }
            catch (TokenizerException)
            {
                return null; // no tokenizer files at all
            }
            var tok = TokenizerLoader.Load(folder);
            v = new Vocabulary(tok.GetVocab(), folder, tok is Tokenization.Tokenizer t ? t.AddedVocabulary.Tokens.Values.ToList() : null);
        }
        return WithConfigAddedTokens(v, folder);
    }

    /// <summary>Reads the vocabulary of a tokenizer.json.</summary>
    public static Vocabulary FromTokenizerJson(string path)
    {
        var root = Parse(path);
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new List<AddedToken>();
        if (root["model"] is JsonObject model)
        {
            switch (model["vocab"])
            {
                case JsonObject o:
                    foreach (var (k, v) in o) map[k] = v!.GetValue<int>();
                    break;
                case JsonArray a: // Unigram: [[piece, score], ...], id = position
                    for (int i = 0; i < a.Count; i++)
                        if (a[i] is JsonArray pair && pair.Count > 0) map.TryAdd(pair[0]!.GetValue<string>(), i);
                    break;
            }
        }
        if (root["added_tokens"] is JsonArray addedTokens)
            foreach (var t in addedTokens)
                if (t is JsonObject o && o["content"] is JsonValue c && o["id"] is JsonValue id)
                {
                    var token = ReadAddedToken(o, id.GetValue<int>(), c.GetValue<string>());
                    map[token.Content] = token.Id;
                    added.Add(token);
                }
        return new Vocabulary(map, path, added.OrderBy(a => a.Id).ToList());
    }

    private static Vocabulary FromVocabJson(string folder, string path)
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new List<AddedToken>();
        foreach (var (k, v) in Parse(path)) map[k] = v!.GetValue<int>();
        var addedPath = Path.Combine(folder, "added_tokens.json");
        if (File.Exists(addedPath))
            foreach (var (k, v) in Parse(addedPath))
            {
                map[k] = v!.GetValue<int>();
                added.Add(new AddedToken(map[k], k, Special: false, Normalized: true)); // transformers' defaults for added_tokens.json
            }
        return new Vocabulary(map, path, added.OrderBy(a => a.Id).ToList());
    }

    /// <summary>Adds the <c>added_tokens_decoder</c> entries of tokenizer_config.json that the tokenizer files lack.</summary>
    private static Vocabulary WithConfigAddedTokens(Vocabulary v, string folder)
    {
        var path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path) || Parse(path)["added_tokens_decoder"] is not JsonObject decoder) return v;
        var map = new Dictionary<string, int>(v.Tokens, StringComparer.Ordinal);
        var added = v.Added.ToList();
        var known = added.Select(a => a.Id).ToHashSet();
        foreach (var (key, node) in decoder)
            if (int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id)
                && node is JsonObject o && o["content"] is JsonValue c && known.Add(id))
            {
                var token = ReadAddedToken(o, id, c.GetValue<string>());
                map.TryAdd(token.Content, id);
                added.Add(token);
            }
        return added.Count == v.Added.Count ? v : new Vocabulary(map, v.Source, added.OrderBy(a => a.Id).ToList());
    }

    private static AddedToken ReadAddedToken(JsonObject o, int id, string content)
    {
        bool Flag(string name, bool fallback) => o[name] is JsonValue f && f.TryGetValue<bool>(out var b) ? b : fallback;
        bool special = Flag("special", false);
        return new AddedToken(id, content, special, Flag("single_word", false), Flag("lstrip", false), Flag("rstrip", false), Flag("normalized", !special));
    }

    internal static JsonObject Parse(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FuseSharpException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FuseSharpException($"{path}: not valid JSON ({e.Message})", "the tokenizer file is damaged; download it again", e);
        }
        catch (InvalidOperationException e)
        {
            throw new FuseSharpException($"{path}: unexpected content ({e.Message})", "the tokenizer file is damaged; download it again", e);
        }
    }
}
