namespace FuseSharp.Tokenization.Models;

/// <summary>Third stage: turns one pre-tokenized word into tokens (HF <c>Model</c>: BPE, Unigram, WordPiece, WordLevel).</summary>
public interface ITokenizerModel
{
    /// <summary>Appends the tokens of <paramref name="word"/>; offsets are UTF-16 ranges of <paramref name="word"/>.</summary>
    void Tokenize(string word, List<ModelToken> output);

    int? TokenToId(string token);

    string? IdToToken(int id);

    /// <summary>Number of entries in the model's vocabulary (HF <c>get_vocab_size</c>).</summary>
    int VocabSize { get; }

    IReadOnlyDictionary<string, int> Vocab { get; }

    /// <summary>The unknown token, if the model has one.</summary>
    string? UnkToken { get; }
}
