namespace FuseSharp.Tokenization.Models;

/// <summary>One token per word, looked up whole (HF <c>WordLevel</c>); unknown words map to the unknown token.</summary>
public sealed class WordLevelModel : ITokenizerModel
{
    private readonly Dictionary<string, int> vocab;
    private readonly string?[] vocabR;

    public WordLevelModel(Dictionary<string, int> vocab, string unkToken)
    {
        this.vocab = vocab;
        vocabR = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (t, id) in vocab) vocabR[id] = t;
        UnkToken = unkToken;
    }

    public string UnkToken { get; }

    public int VocabSize => vocab.Count;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    string? ITokenizerModel.UnkToken => UnkToken;

    public static WordLevelModel FromJson(JsonSection j) => new(BpeModel.ReadVocab(j.Child("vocab")), j.GetStringOrNull("unk_token") ?? "<unk>");

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < vocabR.Length ? vocabR[id] : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (vocab.TryGetValue(word, out int id) || vocab.TryGetValue(UnkToken, out id))
        {
            output.Add(new ModelToken(id, 0, word.Length));
            return;
        }
        throw new TokenizerException($"WordLevel: '{word}' is not in the vocabulary and neither is the unknown token '{UnkToken}'");
    }
}
