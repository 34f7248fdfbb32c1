using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization;

namespace FuseSharp.Merging.Tokenizer;

/// <summary>
/// A model's token → id map, as far as merging needs it (aligning embedding rows by token). Read straight from
/// <c>tokenizer.json</c> (BPE/WordPiece/WordLevel vocab objects, Unigram piece lists, <c>added_tokens</c>) or
/// <c>vocab.json</c> + <c>added_tokens.json</c>; any <see cref="ITokenizer"/> can supply one too. A model with only
/// a SentencePiece <c>.model</c> yields null here until a tokenizer is plugged in through
/// <see cref="TokenizerLoader"/>.
/// </summary>
public sealed class Vocabulary
{
    public Vocabulary(IReadOnlyDictionary<string, int> tokens, string source)
    {
        Tokens = tokens;
        Source = source;
        Count = tokens.Count == 0 ? 0 : tokens.Values.Max() + 1;
    }

    /// <summary>Token → id.</summary>
    public IReadOnlyDictionary<string, int> Tokens { get; }

    /// <summary>Largest id + 1.</summary>
    public int Count { get; }

    /// <summary>Where it was read from.</summary>
    public string Source { get; }

    /// <summary>
    /// Optional full tokenizer loader (the tokenizer engine registers one); used for folders whose vocabulary the
    /// file readers here cannot read (SentencePiece only).
    /// </summary>
    public static Func<string, ITokenizer?>? TokenizerLoader { get; set; }

    public static Vocabulary FromTokenizer(ITokenizer tokenizer, string source) => new(tokenizer.GetVocab(), source);

    /// <summary>The vocabulary of a model folder, or null when no readable tokenizer file is there.</summary>
    /// <exception cref="FuseSharpException">A tokenizer file exists but is malformed.</exception>
    public static Vocabulary? Read(string folder)
    {
        var tj = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tj)) return FromTokenizerJson(tj);
        var vj = Path.Combine(folder, "vocab.json");
        if (File.Exists(vj))
        {
            var map = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (k, v) in ParseObject(vj)) map[k] = v!.GetValue<int>();
            var added = Path.Combine(folder, "added_tokens.json");
            if (File.Exists(added))
                foreach (var (k, v) in ParseObject(added)) map[k] = v!.GetValue<int>();
            return new Vocabulary(map, vj);
        }
        if (TokenizerLoader?.Invoke(folder) is { } tok) return FromTokenizer(tok, folder);
        return null;
    }

    /// <summary>Reads the vocabulary of a tokenizer.json.</summary>
    public static Vocabulary FromTokenizerJson(string path)
    {
        var root = Parse(path);
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
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
                if (t is JsonObject o && o["content"] is JsonValue c && o["id"] is JsonValue id) map[c.GetValue<string>()] = id.GetValue<int>();
        return new Vocabulary(map, path);
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

    private static JsonObject ParseObject(string path) => Parse(path);
}
