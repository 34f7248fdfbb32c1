namespace FuseSharp.Tokenization.Models;

/// <summary>The models of <c>tokenizer.json</c>, by their <c>"type"</c> tag (older files omit it; the fields tell).</summary>
public static class ModelFactory
{
    private static readonly ComponentTable<ITokenizerModel> Table = new("model", new(StringComparer.Ordinal)
    {
        ["BPE"] = BpeModel.FromJson,
        ["Unigram"] = UnigramModel.FromJson,
        ["WordPiece"] = WordPieceModel.FromJson,
        ["WordLevel"] = WordLevelModel.FromJson,
    });

    /// <summary>Builds the model described by <paramref name="j"/>.</summary>
    /// <exception cref="TokenizerException">Unknown type or bad fields (the message names them).</exception>
    public static ITokenizerModel Create(JsonSection j)
    {
        // HF deserializes untagged models by their fields; WordPiece is tried before WordLevel (both have vocab + unk_token).
        var type = j.Type ?? (j.Has("merges") ? "BPE" : j.Has("continuing_subword_prefix") || j.Has("max_input_chars_per_word") ? "WordPiece"
            : j.Has("vocab") && j.Child("vocab").Element.ValueKind == System.Text.Json.JsonValueKind.Array ? "Unigram" : "WordLevel");
        return Table.Create(j, type);
    }
}
