namespace FuseSharp.Tokenization.Models;

/// <summary>
/// Greedy longest-match-first subwords (HF <c>WordPiece</c>): non-initial pieces carry the continuing prefix ("##");
/// a word longer than <c>max_input_chars_per_word</c> characters, or one that cannot be covered, is one unknown token.
/// </summary>
public sealed class WordPieceModel : ITokenizerModel
{
    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabSpan;
    private readonly string?[] vocabR;

    public WordPieceModel(Dictionary<string, int> vocab, string unkToken, string continuingSubwordPrefix, int maxInputCharsPerWord)
    {
        this.vocab = vocab;
        vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        vocabR = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (t, id) in vocab) vocabR[id] = t;
        UnkToken = unkToken;
        Prefix = continuingSubwordPrefix;
        MaxInputCharsPerWord = maxInputCharsPerWord;
    }

    public string UnkToken { get; }

    public string Prefix { get; }

    public int MaxInputCharsPerWord { get; }

    public int VocabSize => vocab.Count;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    string? ITokenizerModel.UnkToken => UnkToken;

    public static WordPieceModel FromJson(JsonSection j) => new(
        BpeModel.ReadVocab(j.Child("vocab")), j.GetStringOrNull("unk_token") ?? "[UNK]",
        j.GetStringOrNull("continuing_subword_prefix") ?? "##", j.GetInt("max_input_chars_per_word", 100));

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < vocabR.Length ? vocabR[id] : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (Unicode.UnicodeChars.CodePointCount(word) > MaxInputCharsPerWord)
        {
            output.Add(new ModelToken(UnkId(), 0, word.Length));
            return;
        }
        int first = output.Count;
        for (int start = 0; start < word.Length;)
        {
            int end = word.Length, found = -1;
            while (start < end)
            {
                bool hit = start == 0
                    ? vocabSpan.TryGetValue(word.AsSpan(start, end - start), out found)
                    : vocab.TryGetValue(string.Concat(Prefix, word.AsSpan(start, end - start)), out found);
                if (hit) break;
                found = -1;
                end -= end - start >= 2 && char.IsLowSurrogate(word[end - 1]) && char.IsHighSurrogate(word[end - 2]) ? 2 : 1;
            }
            if (found < 0)
            {
                output.RemoveRange(first, output.Count - first);
                output.Add(new ModelToken(UnkId(), 0, word.Length));
                return;
            }
            output.Add(new ModelToken(found, start, end));
            start = end;
        }
    }

    private int UnkId() => vocab.TryGetValue(UnkToken, out int id) ? id
        : throw new TokenizerException($"WordPiece: the unknown token '{UnkToken}' is not in the vocabulary");
}
